"""The publisher writes the same broker message Celery's send_task does, in one script."""

import base64
import json

import pytest
import redis

from orchestrator.celery_app import RUN_JOB_TASK, create_celery
from orchestrator.jobs.livestate import LiveState
from orchestrator.jobs.publisher import TaskPublisher
from orchestrator.settings import Settings

QUEUE = "hv.publisher-test"


@pytest.fixture
def client(empty_redis: redis.Redis) -> redis.Redis:
    return empty_redis


def _without_tag(raw: str) -> dict:
    message = json.loads(raw)
    assert message["properties"].pop("delivery_tag")
    return message


def test_the_pushed_message_is_the_one_celery_send_task_pushes(
    client: redis.Redis, redis_server: str
) -> None:
    celery = create_celery(Settings(redis_url=redis_server))
    args = ["job-1", 1, "ping", {"note": "héllo", "n": [1, 2]}]
    with celery.producer_pool.acquire(block=True) as producer:
        celery.send_task(
            RUN_JOB_TASK,
            args=args,
            task_id="job-1",
            queue=QUEUE,
            producer=producer,
            retry=False,
            shadow="ping @ publisher-test",
            ignore_result=True,
        )
    TaskPublisher(celery, LiveState(client)).publish(
        job_id="job-1", attempt=1, kind="ping", hypervisor="publisher-test", params=args[3]
    )
    ours, celerys = client.lrange(QUEUE, 0, -1)  # LPUSH: the newest first
    assert _without_tag(ours) == _without_tag(celerys)
    body = json.loads(base64.b64decode(json.loads(ours)["body"]))
    assert body[0] == args


def test_publishing_marks_the_attempt_queued_and_published_in_one_step(
    client: redis.Redis,
) -> None:
    live = LiveState(client)
    publisher = TaskPublisher(create_celery(Settings()), live)
    publisher.publish(job_id="j1", attempt=1, kind="ping", hypervisor="publisher-test", params={})
    assert live.job("j1")["state"] == "queued"
    assert live.published_attempts(["j1"]) == {"j1": 1}
    assert client.llen(QUEUE) == 1


def test_a_stale_attempt_is_neither_marked_nor_pushed(client: redis.Redis) -> None:
    live = LiveState(client)
    publisher = TaskPublisher(create_celery(Settings()), live)
    publisher.publish(job_id="j1", attempt=2, kind="ping", hypervisor="publisher-test", params={})
    publisher.publish(job_id="j1", attempt=1, kind="ping", hypervisor="publisher-test", params={})
    assert client.llen(QUEUE) == 1
    assert live.published_attempts(["j1"]) == {"j1": 2}
