"""Circuit breakers: one state machine (the core), kept in memory or in Redis."""
