"""Serving: the champion model packed as a BentoML bento and a container image."""
