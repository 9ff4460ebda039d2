"""Refresh leases that know their owner, and refreshes that never hold up a request whose token is still valid:
a dead owner's lease taken over at once, a live one waited for briefly (and said so), a locked store or a slow
token endpoint costing valid-token requests nothing, and a late token answer still stored.
Here the parts that need no socket; through listeners: tests/e2e/test_refresh_leases.py."""

from __future__ import annotations

import os
import subprocess
import sys

from store import lease_owner


# -- owners ------------------------------------------------------------------------------------------
def finished_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_an_owner_names_host_namespace_pid_and_start_time() -> None:
    owner = lease_owner.parse(lease_owner.new_owner())
    assert owner is not None and owner.host == lease_owner.HOST and owner.pid == os.getpid()
    assert owner.start == lease_owner.process_start(os.getpid()) and len(lease_owner.new_owner()) <= 64  # the column
    assert lease_owner.new_owner() != lease_owner.new_owner()  # two attempts in one process differ


def test_only_a_process_of_this_host_that_ended_is_gone() -> None:
    mine = lease_owner.parse(lease_owner.new_owner())
    assert mine is not None
    alive = lease_owner.new_owner()
    dead = f"{mine.host}:{mine.namespace}:{finished_pid()}:{mine.start}:abc123"
    reused = f"{mine.host}:{mine.namespace}:{os.getpid()}:{int(mine.start) + 7}:abc123"  # our pid, another start time
    elsewhere = f"otherhost:{mine.namespace}:{finished_pid()}:{mine.start}:abc123"
    other_namespace = f"{mine.host}:ffff:{finished_pid()}:{mine.start}:abc123"
    assert not lease_owner.is_gone(alive) and lease_owner.is_gone(dead) and lease_owner.is_gone(reused)
    assert not lease_owner.is_gone(elsewhere) and not lease_owner.is_gone(other_namespace)
    assert not lease_owner.is_gone("oldhost:1234:abcdef") and not lease_owner.is_gone(None)  # an older Kleis's owner
