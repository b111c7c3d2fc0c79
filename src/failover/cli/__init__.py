"""The ``failover`` command line."""
