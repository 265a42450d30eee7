"""Content through Redis: in order, bounded in memory, and stopping when a side goes away."""

import threading
from collections.abc import Iterator

import pytest
import redis

from orchestrator.jobs.content_pipe import (
    CHUNK_BYTES,
    WINDOW,
    ContentStopped,
    binary_client,
    pipe_key,
    receive_content,
    send_content,
)


@pytest.fixture
def client(redis_server: str) -> Iterator[redis.Redis]:
    connection = binary_client(redis_server)
    connection.flushall()
    yield connection
    connection.flushall()
    connection.close()


def test_content_arrives_whole_and_in_order_while_redis_holds_only_a_window(
    client: redis.Redis,
) -> None:
    produced = 0
    most_ahead = 0
    received: list[bytes] = []

    def source() -> Iterator[bytes]:
        nonlocal produced, most_ahead
        for index in range(30):
            produced += 1
            most_ahead = max(most_ahead, produced - len(received))
            yield bytes([index]) * (CHUNK_BYTES + 10)  # split into two chunks each

    sender = threading.Thread(target=send_content, args=(client, "j1", source(), lambda: False))
    sender.start()
    for chunk in receive_content(client, "j1"):
        assert client.llen(pipe_key("j1")) <= WINDOW
        received.append(chunk)
    sender.join(10)
    body = b"".join(received)
    assert body == b"".join(bytes([i]) * (CHUNK_BYTES + 10) for i in range(30))
    assert max(len(chunk) for chunk in received) == CHUNK_BYTES
    assert most_ahead <= WINDOW + 2  # the source is read as the receiver goes, not up front
    assert not client.exists(pipe_key("j1"))


def test_the_sender_stops_when_the_receiver_is_gone(client: redis.Redis) -> None:
    chunks = (b"x" * CHUNK_BYTES for _ in range(100))
    with pytest.raises(ContentStopped, match="stopped reading"):
        send_content(client, "j2", chunks, receiver_gone=lambda: True)
    assert client.llen(pipe_key("j2")) == WINDOW + 1  # the window, then the abort mark


def test_a_sender_nobody_reads_gives_up_and_a_late_receiver_stops_at_once(
    client: redis.Redis,
) -> None:
    chunks = (b"y" * CHUNK_BYTES for _ in range(100))
    with pytest.raises(ContentStopped, match=r"read nothing for 0\.3 seconds"):
        send_content(client, "j4", chunks, receiver_gone=lambda: False, start_timeout=0.3)
    assert client.llen(pipe_key("j4")) == WINDOW + 1  # the unread window, then the abort mark
    received = []
    with pytest.raises(ContentStopped, match="sender stopped before the end"):
        for chunk in receive_content(client, "j4", idle_timeout=5):
            received.append(chunk)
    assert len(received) == WINDOW


def test_a_body_that_breaks_off_is_marked_so_the_receiver_does_not_wait(
    client: redis.Redis,
) -> None:
    def broken() -> Iterator[bytes]:
        yield b"first part"
        raise OSError("client went away")

    with pytest.raises(OSError, match="client went away"):
        send_content(client, "j5", broken(), receiver_gone=lambda: False)
    with pytest.raises(ContentStopped, match="sender stopped"):
        list(receive_content(client, "j5", idle_timeout=5))


def test_the_receiver_gives_up_when_nothing_comes(client: redis.Redis) -> None:
    with pytest.raises(ContentStopped, match="no content arrived"):
        list(receive_content(client, "j3", idle_timeout=0.2))
