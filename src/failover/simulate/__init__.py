"""``failover simulate``: the router's own decisions run in virtual time."""
