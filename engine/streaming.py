"""The stream callable installed on SSE responses: parse, observe and rewrite each event as it passes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from core.sse import SSEEvent, SSEParser

log = logging.getLogger(__name__)

Transform = Callable[[SSEEvent], "bytes | None"]
Observer = Callable[[SSEEvent], None]


class StreamRewriter:
    """mitmproxy calls this with each chunk and a final b"". It returns a list of byte strings.

    - Complete events go out at once; a partial event waits (an empty list), never `b""`, which mitmproxy
      would write as the chunked terminator and end the client's response early.
    - `transform` returns new bytes for an event, or None to send its original bytes unchanged.
    - Observers (usage readers) see every event; their failures are logged and ignored.
    - If parsing itself fails, the rest of the stream passes through untouched.
    """

    def __init__(self, transform: Transform | None = None, observers: Iterable[Observer] = ()) -> None:
        self.parser = SSEParser()
        self.transform = transform
        self.observers = list(observers)
        self.passthrough = False
        self.ended = False  # the final b"" came: nothing may be written after the body's end
        self.last_activity = time.time()  # when the client last got bytes (or the stream began), for keep-alives
        self._transform_failed = False

    def __call__(self, chunk: bytes) -> list[bytes]:
        self.last_activity = time.time()
        final = chunk == b""
        self.ended = self.ended or final
        if self.passthrough:
            out = [chunk] if chunk else []
        else:
            try:
                events = self.parser.close() if final else self.parser.feed(chunk)
            except Exception:
                # The parser drops bytes only after a successful drain: what it holds is all that is unsent.
                log.exception("SSE parsing failed; passing the rest of the stream through unchanged")
                self.passthrough = True
                out = [self.parser.pending]
            else:
                out = [self._emit(event) for event in events]
        return [piece for piece in out if piece]

    def _emit(self, event: SSEEvent) -> bytes:
        for observer in self.observers:
            try:
                observer(event)
            except Exception:
                log.exception("stream observer failed on an event")
        if self.transform is None:
            return event.raw
        try:
            rewritten = self.transform(event)
        except Exception:
            if not self._transform_failed:
                log.exception("stream rewrite failed; sending the event unchanged")
                self._transform_failed = True
            return event.raw
        return event.raw if rewritten is None else rewritten
