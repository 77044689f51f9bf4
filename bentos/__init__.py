"""BentoML services built from this project."""
