"""The engine: Kleis's work between the providers and the proxy, in plain code that imports no mitmproxy — the
request pipeline (its context, key auth and limits, budgets, account load and affinity, the request body,
streaming, the usage recorder), the background loops (the store follower, token refresh, quota, health, the
catalog, learned values), metrics, and the vault that keeps upstream tokens out of flows. `addons/` adapts it to
mitmproxy's hooks (tests/unit/test_layers.py holds the layers to that)."""
