"""Kleis's exceptions.

Hierarchy:

    KleisError                    base of every error Kleis raises on purpose
    ├── ConfigError               a KLEIS_* setting is invalid
    ├── StoreError                the store cannot be opened, read or migrated
    │   └── SecretKeyError        tokens cannot be decrypted with the configured key
    ├── NotFound                  an id (key, account, flow) names nothing
    ├── InvalidInput              a value given by the user is unusable
    └── ProviderError             a provider's OAuth or API answered with an error
        ├── ReauthRequired        the account's refresh credential is dead (invalid_grant)
        └── TransientProviderError  network trouble or a 5xx: retry later, keep the tokens
"""

from __future__ import annotations


class KleisError(Exception):
    """Base class: the message is meant for the user as it is."""


class ConfigError(KleisError):
    pass


class StoreError(KleisError):
    pass


class SecretKeyError(StoreError):
    pass


class NotFound(KleisError):
    pass


class InvalidInput(KleisError):
    pass


class ProviderError(KleisError):
    """The message may quote a provider's answer: it is redacted here, once, before it can reach a user."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        from core.redact import redact

        super().__init__(redact(message))
        self.status = status
        self.code = code


class ReauthRequired(ProviderError):
    pass


class TransientProviderError(ProviderError):
    pass
