"""The policy: YAML and dicts validated into frozen settings, with line-accurate errors."""
