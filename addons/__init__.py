"""The mitmproxy adapter: the addon's hooks, the service container, every patch of mitmproxy's code and every read of
its connection internals (compat.py), the debug UI, and the connection-level parts (client writes, the upstream
deadline, keep-alives, the drain). Every module here imports mitmproxy; what does not belongs in engine/
(tests/unit/test_layers.py holds that)."""
