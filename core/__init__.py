"""Shared pieces of Kleis that every part uses: configuration, exceptions, redaction."""
