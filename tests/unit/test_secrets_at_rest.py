"""No client key, OAuth token or PKCE verifier is stored in plaintext anywhere in the data dir."""

from __future__ import annotations

import time

from store import keys, leases
from store.accounts import TokenSet, upsert_account
from store.models import Account, OAuthState


def test_no_plaintext_secret_on_disk(store, config) -> None:
    _, key_one = keys.create_key("one")
    _, key_two = keys.create_key("two", providers="claude")
    access, refresh = "sk-ant-oat01-ACCESSabcdef123456", "sk-ant-ort01-REFRESHabcdef123456"
    row, _ = upsert_account("claude", "uuid-1", TokenSet(access, refresh, time.time() + 3600), store.cipher)
    new_access, new_refresh = "sk-ant-oat01-NEWACCESS987654", "sk-ant-ort01-NEWREFRESH987654"
    assert leases.commit(row.id, row.token_version, TokenSet(new_access, new_refresh, time.time() + 7200), store.cipher)
    verifier = "pkce-verifier-THISISSECRET-0123456789abcdef"
    OAuthState.create(state="s1", provider="claude", verifier=store.cipher.encrypt(verifier), expires_at=time.time() + 600)
    store.db.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")

    blobs = b"".join(path.read_bytes() for path in config.data_dir.iterdir() if path.name.startswith("kleis.db"))
    assert len(blobs) > 10_000
    for secret in (key_one, key_two, access, refresh, new_access, new_refresh, verifier):
        assert secret.encode() not in blobs, f"{secret[:12]}… found in plaintext"
        assert secret[3:20].encode() not in blobs
    assert Account.get_by_id(row.id).token_version == row.token_version + 1
