"""Designs that drive sweeps and read analysis: ``compare`` (sequential verdicts)."""
