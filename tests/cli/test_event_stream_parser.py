"""The Server-Sent Events parser gives the same events however the bytes were cut."""

from __future__ import annotations

from orchestrator.jobcli.sse import EventStreamParser, ServerEvent

STREAM = (
    "retry: 2000\n\n"
    ": keep-alive\n\n"
    'id: 1\r\nevent: job-event\r\ndata: {"message": "caf\u00e9 \u2615"}\r\n\r\n'
    "id: 2\revent: job-event\rdata: first\rdata: second\r\r"
    "data: unnamed\n\n"
    "event: end\ndata:{}\nignored-field: x\n\n"
).encode()
EXPECTED = [
    ServerEvent("job-event", '{"message": "caf\u00e9 \u2615"}', "1"),
    ServerEvent("job-event", "first\nsecond", "2"),
    ServerEvent("message", "unnamed", "2"),  # the last id holds until another comes
    ServerEvent("end", "{}", "2"),
]


def parse(chunks: list[bytes]) -> list[ServerEvent]:
    parser = EventStreamParser()
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_the_stream_whole_and_cut_at_every_byte_gives_the_same_events() -> None:
    assert parse([STREAM]) == EXPECTED
    assert parse([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED
    for cut in range(len(STREAM)):
        assert parse([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_an_event_cut_before_its_blank_line_is_not_given_out() -> None:
    parser = EventStreamParser()
    assert parser.feed(b"id: 7\nevent: job-event\ndata: {}\n") == []
    assert parser.feed(b"\n") == [ServerEvent("job-event", "{}", "7")]
