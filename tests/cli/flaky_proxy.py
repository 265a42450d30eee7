"""A TCP proxy in front of the API that misbehaves as a bad network does: it forwards each
request whole, then loses the answer, or cuts it after some bytes, for the requests its plan
names. Requests are numbered from 1 in the order they arrive, over all connections."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType

# (request number, request line) -> how many bytes of the answer to relay before closing the
# connection; None relays the whole answer.
Plan = Callable[[int, str], int | None]
_METHODS = (b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ", b"HEAD ")


class _Connection:
    """One client connection: the budget of the answer to the request it carries now."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.budget: int | None = None


class FlakyProxy:
    def __init__(
        self, upstream: tuple[str, int], plan: Plan, rewrite: tuple[bytes, bytes] | None = None
    ) -> None:
        self.upstream = upstream
        self.plan = plan
        # Replace these bytes in requests (e.g. an Accept header), by as many or fewer.
        self.rewrite = rewrite
        self.requests = 0
        self.cut = 0  # answers cut short of what the API sent
        self.streamed = False  # whether the API answered any request as Server-Sent Events
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> FlakyProxy:
        self._start(self._accept)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)
        for thread in self._threads:
            thread.join(10)

    def _start(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            connection = _Connection(client, socket.create_connection(self.upstream))
            with self._lock:
                self._sockets += [connection.client, connection.upstream]
            self._start(self._requests, connection)
            self._start(self._answers, connection)

    def _requests(self, connection: _Connection) -> None:
        while data := _recv(connection.client):
            if data.startswith(_METHODS):  # a new request: HTTP/1.1 sends one at a time
                with self._lock:
                    self.requests += 1
                    number = self.requests
                line = data.split(b"\r\n", 1)[0].decode("latin-1")
                connection.budget = self.plan(number, line)
            if self.rewrite:
                old, new = self.rewrite
                data = data.replace(old, new.ljust(len(old)))
            try:
                connection.upstream.sendall(data)
            except OSError:
                break
        _close(connection.upstream)

    def _answers(self, connection: _Connection) -> None:
        while data := _recv(connection.upstream):
            self.streamed = self.streamed or b"Content-Type: text/event-stream" in data
            budget = connection.budget
            if budget is not None and len(data) > budget:
                # The request reached the API and it answered; the client gets only part.
                _send(connection.client, data[:budget])
                with self._lock:
                    self.cut += 1
                break
            _send(connection.client, data)
            if budget is not None:
                connection.budget = budget - len(data)
        _close(connection.client)
        _close(connection.upstream)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(data)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
