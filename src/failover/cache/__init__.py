"""The fallback cache: backends (memory, SQLite, Redis) and the policy that uses them."""
