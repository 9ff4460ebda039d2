"""Loopback fake upstreams, reusable by every test: real servers on 127.0.0.1 that record what they receive."""
