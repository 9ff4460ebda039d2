"""Refresh leases that know their owner, and refreshes that never hold up a request whose token is still valid:
a dead owner's lease taken over at once, a live one waited for briefly (and said so), a locked store or a slow
token endpoint costing valid-token requests nothing, and a late token answer still stored.
Here the parts that need no socket; through listeners: tests/e2e/test_refresh_leases.py."""

from __future__ import annotations

import os

from store import lease_owner

# -- owners ------------------------------------------------------------------------------------------


def test_an_owner_names_host_namespace_pid_and_start_time() -> None:
    owner = lease_owner.parse(lease_owner.new_owner())
    assert owner is not None and owner.host == lease_owner.HOST and owner.pid == os.getpid()
    assert owner.start == lease_owner.process_start(os.getpid()) and len(lease_owner.new_owner()) <= 64  # the column
    assert lease_owner.new_owner() != lease_owner.new_owner()  # two attempts in one process differ
