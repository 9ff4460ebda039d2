"""Helpers the tests share (not fixtures: those are all in tests/conftest.py)."""
