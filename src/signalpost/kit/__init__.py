"""Generic helpers that never import a feature package."""
