"""End-to-end runs that read top to bottom: `python -m fireflan.recipes.NAME --help`."""
