"""The engine's tools, kept apart from the product modules: the LOBSTER conformance replay, a local NATS cluster."""
