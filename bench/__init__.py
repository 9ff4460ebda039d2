"""Benchmarks: Kleis against a direct connection and a bare mitmproxy, measured in the same run (see bench/README.md)."""
