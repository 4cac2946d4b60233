"""Entry points: the command line (``rlcompare ...``) and the papermill suite of notebooks."""
