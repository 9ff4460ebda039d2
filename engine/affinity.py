"""Session affinity: which account served each conversation, kept for KLEIS_SESSION_TTL after its last request.

Bounded (least recently used conversations are forgotten first) and per process: with several Kleis processes
behind a balancer, a conversation keeps its account as long as the balancer keeps the client on one process
(sticky by client address or key); otherwise each process binds it on its own.
"""

from __future__ import annotations

import collections


class SessionAffinity:
    def __init__(self, ttl: float, max_size: int = 20_000) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._bound: collections.OrderedDict[str, tuple[int, float]] = collections.OrderedDict()  # id -> (account, last seen)

    def account_for(self, conversation: str, now: float) -> int | None:
        """The conversation's account, if it had a request within the TTL."""
        entry = self._bound.get(conversation)
        if entry is None:
            return None
        if now - entry[1] > self.ttl:
            del self._bound[conversation]
            return None
        return entry[0]

    def bind(self, conversation: str, account_id: int, now: float) -> None:
        """This request of the conversation went to `account_id` (its last request now)."""
        if not conversation:
            return  # not named: its provider has a single account
        self._bound[conversation] = (account_id, now)
        self._bound.move_to_end(conversation)
        while len(self._bound) > self.max_size:
            self._bound.popitem(last=False)

    def __len__(self) -> int:
        return len(self._bound)
