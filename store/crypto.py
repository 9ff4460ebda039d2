"""Encryption of OAuth tokens at rest (Fernet from `cryptography`, never hand-rolled)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.exceptions import ConfigError, SecretKeyError


def new_secret_key() -> str:
    return Fernet.generate_key().decode("ascii")


class TokenCipher:
    """Encrypts with the first key, decrypts with any (so keys can be rotated)."""

    def __init__(self, keys: str) -> None:
        parts = [part.strip() for part in keys.split(",") if part.strip()]
        if not parts:
            raise ConfigError("KLEIS_SECRET_KEY: no key given")
        fernets = []
        for part in parts:
            try:
                fernets.append(Fernet(part.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise ConfigError(
                    "KLEIS_SECRET_KEY: each key must be 32 url-safe base64-encoded bytes (generate one with: python kleis.py secret-key)"
                ) from None
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SecretKeyError(
                "stored tokens cannot be decrypted with KLEIS_SECRET_KEY: the key differs from the one the store was written with"
            ) from None

    def encrypt_optional(self, plaintext: str | None) -> str | None:
        return None if plaintext is None else self.encrypt(plaintext)

    def decrypt_optional(self, ciphertext: str | None) -> str | None:
        return None if ciphertext is None else self.decrypt(ciphertext)
