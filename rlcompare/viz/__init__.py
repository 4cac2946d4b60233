"""Presentation: one style module (theme, sizes, colours), plots and grid-world plots that read
DataFrames only, save_figure with provenance, the gallery and headline records."""
