"""Who holds a refresh lease: host, PID namespace, process id and start time, and whether that process is gone.

A lease names its owner as `host:pidns:pid:start:attempt`. Another process on the same host (same host name and
PID namespace) can tell that the owner is gone — its pid no longer exists, or now belongs to a process started
at another time — and take the lease over at once instead of waiting for it to expire. A lease held on another
host can only be waited for.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import uuid

HOST = socket.gethostname().replace(":", "_")[:24] or "localhost"


@dataclasses.dataclass(frozen=True)
class LeaseOwner:
    host: str
    namespace: str
    pid: int
    start: str  # the process's start time in clock ticks since boot ("0": unknown)
    attempt: str

    def __str__(self) -> str:
        return f"process {self.pid} on {self.host}"


@functools.cache
def _namespace() -> str:
    try:
        return f"{os.stat('/proc/self/ns/pid').st_ino:x}"
    except OSError:
        return "0"


def process_start(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time); None if the process does not exist or /proc cannot say."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else None


def new_owner() -> str:
    """An owner for one refresh attempt: two attempts in one process (the admin's "refresh now" beside the proxy's
    own) exclude each other as much as two processes do."""
    pid = os.getpid()
    return f"{HOST}:{_namespace()}:{pid}:{process_start(pid) or '0'}:{uuid.uuid4().hex[:6]}"


def parse(owner: str | None) -> LeaseOwner | None:
    parts = (owner or "").split(":")
    if len(parts) != 5 or not parts[2].isdigit():
        return None  # an older Kleis's owner (host:pid:attempt), or none
    return LeaseOwner(parts[0], parts[1], int(parts[2]), parts[3], parts[4])


def is_gone(owner: str | None) -> bool:
    """True only when `owner` certainly is a process of this host that no longer runs."""
    found = parse(owner)
    if found is None or found.host != HOST or found.namespace != _namespace():
        return False
    try:
        os.kill(found.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, run by another user
    started = process_start(found.pid)
    return found.start != "0" and started is not None and started != found.start  # the pid was reused


def describe(owner: str | None) -> str:
    found = parse(owner)
    return str(found) if found is not None else (owner or "nobody")
