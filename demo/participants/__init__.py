"""Simulated participants of the venue demo, each a client of the gateway through the SDK:
one small module per behaviour (``base`` holds what they share)."""
