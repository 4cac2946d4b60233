"""One module per notebook: its spec grid from the notebook's parameters, its analysis (tables,
filters, headline numbers) and its multi-panel figures. Notebooks call these in one line."""
