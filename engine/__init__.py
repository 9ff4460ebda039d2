"""The engine: Kleis's work between the providers and the proxy — background loops (the store follower, token
refresh, quota, health, the catalog, learned values) and metrics — in plain code that imports no mitmproxy.
`addons/` adapts it to mitmproxy's hooks (tests/test_layers.py holds the layers to that)."""
