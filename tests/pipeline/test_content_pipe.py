"""Content through Redis: in order, bounded in memory, and stopping when a side goes away."""

import threading
from collections.abc import Iterator

import pytest
import redis

from orchestrator.content_pipe import (
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
    assert client.llen(pipe_key("j2")) == WINDOW


def test_the_receiver_gives_up_when_nothing_comes(client: redis.Redis) -> None:
    with pytest.raises(ContentStopped, match="no content arrived"):
        list(receive_content(client, "j3", idle_timeout=0.2))
