"""The venue engine: the Cython core (engine/core), the gateway (engine/gateway), the wire
protocol, client SDK, journal, config and units, and the executable spec (engine/reference)."""
