"""Deep agents (registered by the deep-agents issue)."""
