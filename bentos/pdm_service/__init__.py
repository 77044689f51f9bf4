"""The prediction service: see service.py."""
