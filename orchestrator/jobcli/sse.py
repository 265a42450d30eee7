"""An incremental parser of Server-Sent Events (the WHATWG ``text/event-stream`` format): bytes
in as they arrive, whole events out."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """One dispatched event: its type (``message`` when unnamed), data and last event id."""

    event: str
    data: str
    id: str | None


class EventStreamParser:
    """Feed it chunks cut anywhere (even inside a UTF-8 character or a CRLF)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[ServerEvent]:
        self._buffer += self._decoder.decode(chunk)
        dispatched = []
        for line in self._complete_lines():
            event = self._line(line)
            if event is not None:
                dispatched.append(event)
        return dispatched

    def _complete_lines(self) -> list[str]:
        lines, start = [], 0
        for end in _LINE_END.finditer(self._buffer):
            if end.group() == "\r" and end.end() == len(self._buffer):
                break  # may be the first half of a CRLF still on its way
            lines.append(self._buffer[start : end.start()])
            start = end.end()
        self._buffer = self._buffer[start:]
        return lines

    def _line(self, line: str) -> ServerEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment, such as the server's keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._last_id = value
        return None  # "retry" and unknown fields are ignored

    def _dispatch(self) -> ServerEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        # A block without data (such as a lone "retry:") dispatches nothing.
        return ServerEvent(event, "\n".join(data), self._last_id) if data else None
