"""Fixtures shared across test modules (loopback fakes and a live Kleis are added by the proxy tests)."""
