"""A server-sent events parser, as the WHATWG HTML standard's "event stream" section says.

Incremental over raw bytes: lines end in CRLF, LF or CR (also when a CRLF is
split across two reads); `data` lines join with LF; comments (`:`) are skipped;
`id` sets the last event id (kept across events, ignored when it holds NUL);
`retry` sets the reconnection time when it is all ASCII digits; an event is
dispatched at a blank line and only when it has data; a partial event at the
end of the stream is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SseEvent", "SseParser"]

_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class SseEvent:
    data: str
    type: str = "message"
    id: str | None = None  # the last event id when this event was dispatched


class SseParser:
    """Feed it bytes as they arrive; it returns the events they complete."""

    def __init__(self, last_event_id: str | None = None) -> None:
        self.last_event_id = last_event_id
        self.retry_ms: int | None = None
        self._parts: list[bytes] = []
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF belongs to it
        self._first_line = True
        self._data: list[str] = []
        self._type = ""

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._skip_lf = False
        if b"\n" not in chunk and b"\r" not in chunk:
            # Part of a long line (a whole flags document): keep it without copying.
            if chunk:
                self._parts.append(chunk)
            return []
        buffer = b"".join((*self._parts, chunk))
        self._parts = []
        events: list[SseEvent] = []
        start = 0
        size = len(buffer)
        while start < size:
            lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, lf if lf >= 0 else size)
            end = cr if cr >= 0 else lf
            if end < 0:
                break
            line = buffer[start:end]
            if cr < 0:
                start = lf + 1
            elif cr + 1 == size:
                self._skip_lf = True
                start = size
            else:
                start = cr + 2 if buffer[cr + 1] == 0x0A else cr + 1
            event = self._line(line.decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        if start < size:
            self._parts.append(buffer[start:])
        return events

    def _line(self, line: str) -> SseEvent | None:
        if self._first_line:
            self._first_line = False
            line = line.removeprefix(_BOM)
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        data, kind = self._data, self._type
        self._data, self._type = [], ""
        if not data:
            return None
        return SseEvent(data="\n".join(data), type=kind or "message", id=self.last_event_id)
