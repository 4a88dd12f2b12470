"""Clients for the upstreams the gateway talks to (RTB and Core API)."""
