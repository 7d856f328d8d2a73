"""Feeds of the venue: option marks and margins (options.py)."""
