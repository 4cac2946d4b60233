"""Tabular learners (registered by the tabular issue)."""
