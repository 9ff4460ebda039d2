"""Token encryption at rest: round trip, rotation, wrong key and malformed key."""

from __future__ import annotations

import pytest

from core.exceptions import ConfigError, SecretKeyError
from store.crypto import TokenCipher, new_secret_key


def test_round_trip_and_ciphertext_hides_plaintext() -> None:
    cipher = TokenCipher(new_secret_key())
    token = "sk-ant-oat01-secret-access-token"
    sealed = cipher.encrypt(token)
    assert token not in sealed
    assert cipher.decrypt(sealed) == token
    assert cipher.encrypt(token) != sealed  # fresh IV each time


def test_wrong_key_is_a_clear_error_not_garbage() -> None:
    sealed = TokenCipher(new_secret_key()).encrypt("refresh-token")
    with pytest.raises(SecretKeyError) as info:
        TokenCipher(new_secret_key()).decrypt(sealed)
    assert "KLEIS_SECRET_KEY" in str(info.value)


def test_rotation_decrypts_with_old_key_and_encrypts_with_new() -> None:
    old, new = new_secret_key(), new_secret_key()
    sealed_old = TokenCipher(old).encrypt("t1")
    rotated = TokenCipher(f"{new},{old}")
    assert rotated.decrypt(sealed_old) == "t1"
    assert TokenCipher(new).decrypt(rotated.encrypt("t2")) == "t2"


@pytest.mark.parametrize("bad", ["", "short", "x" * 44])
def test_malformed_key_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        TokenCipher(bad)
    assert "KLEIS_SECRET_KEY" in str(info.value)
