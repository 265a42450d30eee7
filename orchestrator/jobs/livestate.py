"""Live job state in Redis: the claim, the numbered event stream, heartbeats.

Workers, the API and the recorder all go through this module; every state change is one Lua
script, so it is atomic and checked against the lifecycle's transitions and the job's attempt.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

from orchestrator.jobs.events import Event
from orchestrator.jobs.lifecycle import JobState, allowed_sources

GLOBAL_EVENTS = "orch:events"
RUNNING_SET = "orch:running"
HYPERVISORS = "orch:hypervisors"
RECORDER_GROUP = "recorder"
# Live state outlives the job by this much; SQL keeps the history after that.
LIVE_TTL_SECONDS = 24 * 3600


def job_key(job_id: str) -> str:
    return f"orch:job:{job_id}"


def job_stream(job_id: str) -> str:
    return f"orch:job:{job_id}:events"


def done_channel(job_id: str) -> str:
    return f"orch:done:{job_id}"


def heartbeat_key(hypervisor: str) -> str:
    return f"orch:hb:{hypervisor}"


def instance_key(instance: str) -> str:
    """Set while the worker process ``instance`` beats: the jobs it claimed are not lost, even
    with another process serving the same hypervisor (a rolling restart, a second worker)."""
    return f"orch:hb-instance:{instance}"


# Shared by every script: append one event to the job's stream and the recorder's stream,
# moving the job to a new state when one is given and the transition is allowed.
_EMIT = """
local function emit(job_id, attempt, state, sources, level, host, message, data, extra, now)
  local jk = 'orch:job:' .. job_id
  if state ~= '' then
    local current = redis.call('HGET', jk, 'state') or 'pending'
    if not string.find(' ' .. sources .. ' ', ' ' .. current .. ' ', 1, true) then
      return {-2, current}
    end
    redis.call('HSET', jk, 'state', state, 'updated_at', now)
  end
  local seq = redis.call('HINCRBY', jk, 'seq', 1)
  local fields = {'job', job_id, 'seq', seq, 'time', now, 'level', level,
                  'message', message, 'attempt', attempt}
  if host ~= '' then table.insert(fields, 'host'); table.insert(fields, host) end
  if data ~= '' then table.insert(fields, 'data'); table.insert(fields, data) end
  if state ~= '' then table.insert(fields, 'state'); table.insert(fields, state) end
  for i = 1, #extra, 2 do table.insert(fields, extra[i]); table.insert(fields, extra[i + 1]) end
  -- The job's own stream uses the sequence number as entry id (0-seq): readers ask for the
  -- events after N directly instead of scanning the stream.
  redis.call('XADD', jk .. ':events', 'MAXLEN', '~', 100000, '0-' .. seq, unpack(fields))
  redis.call('XADD', 'orch:events', '*', unpack(fields))
  return {seq}
end
local function stale(job_id, attempt)
  local current = tonumber(redis.call('HGET', 'orch:job:' .. job_id, 'attempt') or '1')
  return tonumber(attempt) < current
end
"""

# A count request's parent job runs nowhere: its children move it. The first child to start
# makes it running; each child that ends adds an event (and its outcome) to it; the last one
# finishes it, succeeded only when every child did. A child is counted once, whoever ends it.
_FAMILY = """
local function parent_started(job_id, now)
  local parent = redis.call('HGET', 'orch:job:' .. job_id, 'parent')
  if not parent then return end
  local pk = 'orch:job:' .. parent
  if redis.call('HGET', pk, 'state') == 'queued' then
    emit(parent, 1, 'running', 'queued', 'info', '', 'the first VM started', '', {}, now)
    redis.call('HSET', pk, 'started_at', now)
  end
end
local function child_ended(job_id, state, parent, siblings, now, ttl)
  local jk = 'orch:job:' .. job_id
  if parent == '' then parent = redis.call('HGET', jk, 'parent') or '' end
  if parent == '' then return end
  local pk = 'orch:job:' .. parent
  local total = tonumber(siblings ~= '' and siblings or redis.call('HGET', jk, 'siblings')
    or redis.call('HGET', pk, 'children') or 0)
  local name, hypervisor = job_id, redis.call('HGET', jk, 'hypervisor') or ''
  local summary = redis.call('HGET', jk, 'summary')
  if summary then
    local decoded = cjson.decode(summary)
    name = decoded['params']['name']
    if hypervisor == '' then hypervisor = decoded['hypervisor'] end
  end
  local outcome = cjson.encode({job = job_id, name = name, state = state, hypervisor = hypervisor})
  if redis.call('HSETNX', pk .. ':children', job_id, outcome) == 0 then return end
  redis.call('EXPIRE', pk .. ':children', ttl)
  local done = redis.call('HINCRBY', pk, 'children_done', 1)
  redis.call('HINCRBY', pk, 'children_' .. state, 1)
  local level = state == 'succeeded' and 'info' or 'error'
  local line = name .. ' ' .. state .. ' on ' .. hypervisor
    .. ' (' .. done .. ' of ' .. total .. ' done)'
  emit(parent, 1, '', '', level, '', line, outcome, {}, now)
  if done < total then return end
  local counts = {succeeded = 0, failed = 0, cancelled = 0, lost = 0}
  local where, unsuccessful = {}, {}
  local children = redis.call('HVALS', pk .. ':children')
  for i = 1, #children do
    local child = cjson.decode(children[i])
    counts[child.state] = (counts[child.state] or 0) + 1
    where[child.hypervisor] = where[child.hypervisor] or {}
    where[child.hypervisor][child.state] = (where[child.hypervisor][child.state] or 0) + 1
    if child.state ~= 'succeeded' then table.insert(unsuccessful, child) end
  end
  table.sort(unsuccessful, function(a, b) return a.job < b.job end)
  -- A child stopped while it ran ends failed; when the parent was cancelled, that is why.
  local final
  if counts.succeeded == total then final = 'succeeded'
  elseif redis.call('EXISTS', pk .. ':cancel') == 1 then final = 'cancelled'
  elseif counts.failed + counts.lost > 0 then final = 'failed'
  else final = 'cancelled' end
  local result = cjson.encode({count = total, succeeded = counts.succeeded, failed = counts.failed,
    cancelled = counts.cancelled, lost = counts.lost, hypervisors = where})
  local message = counts.succeeded .. ' of ' .. total .. ' VMs succeeded'
  local extra = {'result', result}
  local error = ''
  if final ~= 'succeeded' then
    local names = {}
    for i = 1, math.min(#unsuccessful, 20) do
      table.insert(names, unsuccessful[i].name .. ' ' .. unsuccessful[i].state)
    end
    local detail = (total - counts.succeeded) .. ' of ' .. total .. ' VMs did not succeed: '
      .. table.concat(names, ', ')
    if #unsuccessful > 20 then detail = detail .. ' and ' .. (#unsuccessful - 20) .. ' more' end
    error = cjson.encode({type = 'urn:orchestrator:problem:children-unsuccessful',
      title = 'Some VMs did not succeed', status = 500, detail = detail})
    table.insert(extra, 'error'); table.insert(extra, error)
    message = detail
  end
  local final_level = final == 'succeeded' and 'info' or 'error'
  local sources = 'pending queued running'
  local r = emit(parent, 1, final, sources, final_level, '', message, '', extra, now)
  if r[1] < 0 then return end
  redis.call('HSET', pk, 'finished_at', now, 'result', result, 'error', error)
  redis.call('EXPIRE', pk, ttl)
  redis.call('EXPIRE', pk .. ':events', ttl)
  redis.call('PUBLISH', 'orch:done:' .. parent, final)
end
"""

# ARGV: parent_id count message now
_OPEN_FAMILY_SCRIPT = (
    _EMIT
    + """
local pk = 'orch:job:' .. ARGV[1]
if redis.call('HEXISTS', pk, 'state') == 1 then return {-1} end
local r = emit(ARGV[1], 1, 'queued', 'pending', 'info', '', ARGV[3], '', {}, ARGV[4])
redis.call('HSET', pk, 'attempt', 1, 'children', ARGV[2])
return r
"""
)

# ARGV: job_id attempt state sources level host message data now
_EMIT_SCRIPT = (
    _EMIT
    + """
if stale(ARGV[1], ARGV[2]) then return {-1} end
return emit(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], {}, ARGV[9])
"""
)

# ARGV: job_id attempt kind hypervisor message now sources summary queue_key task_message
#       parent siblings
_QUEUE_SCRIPT = (
    _EMIT
    + """
local jk = 'orch:job:' .. ARGV[1]
if stale(ARGV[1], ARGV[2]) then return {-1} end
local r = emit(ARGV[1], ARGV[2], 'queued', ARGV[7], 'info', '', ARGV[5], '', {}, ARGV[6])
if r[1] > 0 then
  redis.call('HSET', jk, 'attempt', ARGV[2], 'kind', ARGV[3], 'hypervisor', ARGV[4])
  if ARGV[8] ~= '' then redis.call('HSET', jk, 'summary', ARGV[8]) end
  if ARGV[11] ~= '' then redis.call('HSET', jk, 'parent', ARGV[11], 'siblings', ARGV[12]) end
  redis.call('SREM', 'orch:running', ARGV[1])
end
if ARGV[9] ~= '' then
  redis.call('LPUSH', ARGV[9], ARGV[10])
  redis.call('HSET', jk, 'published_attempt', ARGV[2])
end
return r
"""
)

# KEYS: hypervisor heartbeat, instance liveness; ARGV: instance
_WITHDRAW_SCRIPT = """
redis.call('DEL', KEYS[2])
local beat = redis.call('GET', KEYS[1])
if beat and cjson.decode(beat)['instance'] == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""

# ARGV: job_id attempt worker instance now sources message data
_CLAIM_SCRIPT = (
    _EMIT
    + _FAMILY
    + """
local jk = 'orch:job:' .. ARGV[1]
if stale(ARGV[1], ARGV[2]) then return {-1, 'stale'} end
if redis.call('HGET', jk, 'claimed_attempt') == ARGV[2] then return {-1, 'duplicate'} end
local r = emit(ARGV[1], ARGV[2], 'running', ARGV[6], 'info', '', ARGV[7], ARGV[8], {}, ARGV[5])
if r[1] < 0 then return r end
redis.call('HSET', jk, 'claimed_attempt', ARGV[2], 'attempt', ARGV[2], 'worker', ARGV[3],
           'instance', ARGV[4], 'started_at', ARGV[5])
redis.call('SADD', 'orch:running', ARGV[1])
parent_started(ARGV[1], ARGV[5])
return r
"""
)

# ARGV: job_id attempt state sources level message result error now ttl parent siblings
_FINISH_SCRIPT = (
    _EMIT
    + _FAMILY
    + """
local jk = 'orch:job:' .. ARGV[1]
if stale(ARGV[1], ARGV[2]) then return {-1} end
local extra = {}
if ARGV[7] ~= '' then extra = {'result', ARGV[7]} end
if ARGV[8] ~= '' then table.insert(extra, 'error'); table.insert(extra, ARGV[8]) end
local r = emit(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], '', ARGV[6], '', extra, ARGV[9])
if r[1] < 0 then return r end
redis.call('HSET', jk, 'finished_at', ARGV[9], 'result', ARGV[7], 'error', ARGV[8])
redis.call('SREM', 'orch:running', ARGV[1])
redis.call('EXPIRE', jk, ARGV[10])
redis.call('EXPIRE', jk .. ':events', ARGV[10])
redis.call('PUBLISH', 'orch:done:' .. ARGV[1], ARGV[3])
child_ended(ARGV[1], ARGV[3], ARGV[11], ARGV[12], ARGV[9], ARGV[10])
return r
"""
)


# (parent job id, number of children) of a count request's child.
Family = tuple[str, int]


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # this delivery runs the job
    DUPLICATE = "duplicate"  # this attempt was already claimed: a redelivery, do nothing
    STALE = "stale"  # a newer attempt exists: do nothing
    REFUSED = "refused"  # the job is in a state that cannot run (cancelled, finished)


@dataclass(frozen=True)
class Emitted:
    seq: int | None  # None when nothing was written
    current_state: str | None = None  # the state that refused the transition, if any


class LiveState:
    """Redis-side operations on jobs and hypervisors."""

    def __init__(self, client: redis.Redis) -> None:
        # redis-py types every reply as "value or awaitable" (one stub for sync and async
        # clients); this client is synchronous, so replies are used as plain values.
        self.redis: Any = client
        self._emit = client.register_script(_EMIT_SCRIPT)
        self._queue = client.register_script(_QUEUE_SCRIPT)
        self._claim = client.register_script(_CLAIM_SCRIPT)
        self._finish = client.register_script(_FINISH_SCRIPT)
        self._withdraw = client.register_script(_WITHDRAW_SCRIPT)
        self._open_family = client.register_script(_OPEN_FAMILY_SCRIPT)

    @classmethod
    def from_url(cls, url: str) -> LiveState:
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            health_check_interval=30,
            socket_connect_timeout=2,
            socket_timeout=10,
        )
        return cls(client)

    # --- job transitions -------------------------------------------------------------------
    def mark_queued(
        self,
        job_id: str,
        attempt: int,
        kind: str,
        hypervisor: str,
        message: str,
        summary: dict[str, Any] | None = None,
        delivery: tuple[str, str] | None = None,
        family: Family | None = None,
    ) -> Emitted:
        """Record that attempt ``attempt`` is queued on its hypervisor's queue.

        ``summary`` (the job's unchanging fields) lets readers answer from Redis alone.
        ``delivery`` = (broker list, encoded task message) pushes the task in the same atomic
        step and notes the attempt as published; a stale attempt is neither marked nor pushed.
        ``family`` names the parent of a count request's child, which its end then moves.
        """
        sources = " ".join(allowed_sources(JobState.QUEUED))
        queue_key, task_message = delivery or ("", "")
        parent, siblings = family or ("", "")
        raw = self._queue(
            args=[
                job_id,
                attempt,
                kind,
                hypervisor,
                message,
                _now(),
                sources,
                _json(summary),
                queue_key,
                task_message,
                parent,
                siblings,
            ]
        )
        return _emitted(raw)

    def open_family(self, parent_id: str, count: int, message: str) -> Emitted:
        """Mark a count request's parent queued, before its children are (a no-op once it is
        known: the recorder may send children the API could not)."""
        return _emitted(self._open_family(args=[parent_id, count, message, _now()]))

    def published_attempts(self, job_ids: list[str]) -> dict[str, int]:
        """The highest attempt of each job known to have reached the broker."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(job_key(job_id), "published_attempt")
        return {job_id: int(v) for job_id, v in zip(job_ids, pipe.execute(), strict=True) if v}

    def claim(self, job_id: str, attempt: int, worker: str, instance: str) -> ClaimOutcome:
        """Atomic compare-and-set on (job id, attempt): only one delivery of an attempt runs."""
        sources = " ".join(allowed_sources(JobState.RUNNING))
        message = f"running on {worker} (attempt {attempt})"
        data = _json({"worker": worker})
        raw = self._claim(args=[job_id, attempt, worker, instance, _now(), sources, message, data])
        if raw[0] > 0:
            return ClaimOutcome.CLAIMED
        if raw[0] == -1:
            return ClaimOutcome(raw[1])
        return ClaimOutcome.REFUSED

    def event(
        self,
        job_id: str,
        attempt: int,
        message: str,
        *,
        level: str = "info",
        host: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> Emitted:
        """Append one numbered event to the job's stream (nothing when the attempt is stale)."""
        raw = self._emit(
            args=[job_id, attempt, "", "", level, host or "", message, _json(data), _now()]
        )
        return _emitted(raw)

    def finish(
        self,
        job_id: str,
        attempt: int,
        state: JobState,
        message: str,
        *,
        result: Any = None,
        error: dict[str, Any] | None = None,
        family: Family | None = None,
    ) -> Emitted:
        """Move the job to a terminal state with its result or error. A count request's child
        moves its parent too; ``family`` names the parent of a child Redis never saw queued."""
        level = "info" if state is JobState.SUCCEEDED else "error"
        parent, siblings = family or ("", "")
        raw = self._finish(
            args=[
                job_id,
                attempt,
                state.value,
                " ".join(allowed_sources(state)),
                level,
                message,
                _json(result),
                _json(error),
                _now(),
                LIVE_TTL_SECONDS,
                parent,
                siblings,
            ]
        )
        return _emitted(raw)

    def is_current_attempt(self, job_id: str, attempt: int) -> bool:
        """Whether no newer attempt of the job was queued (a stale one must not clean up)."""
        current = self.redis.hget(job_key(job_id), "attempt")
        return current is None or int(current) <= attempt

    def cancel_flag_key(self, job_id: str) -> str:
        return f"orch:job:{job_id}:cancel"

    def request_cancel(self, job_id: str) -> None:
        """Ask the worker running the job to stop at its next check."""
        self.redis.set(self.cancel_flag_key(job_id), "1", ex=LIVE_TTL_SECONDS)

    # --- reading ---------------------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any] | None:
        """The live fields of a job, decoded, or None when Redis has none."""
        raw = self.redis.hgetall(job_key(job_id))
        return _decoded(job_id, raw) if raw else None

    def jobs(self, job_ids: list[str]) -> dict[str, dict[str, Any] | None]:
        """The live fields of each job (None for one Redis does not know), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(job_key(job_id))
        return {
            job_id: _decoded(job_id, raw) if raw else None
            for job_id, raw in zip(job_ids, pipe.execute(), strict=True)
        }

    def wait_for_events(self, job_id: str, after: int, block_ms: int) -> bool:
        """Block until the job's stream has an event with seq > ``after`` (True) or
        ``block_ms`` passed (False). Keep ``block_ms`` below the client's socket timeout."""
        found = self.redis.xread({job_stream(job_id): f"0-{after}"}, count=1, block=block_ms)
        return bool(found)

    def state(self, job_id: str) -> JobState | None:
        """Only the job's live state (one field): for loops that poll it."""
        raw = self.redis.hget(job_key(job_id), "state")
        return JobState(raw) if raw else None

    def events(self, job_id: str, after: int = 0, limit: int = 1000) -> list[Event] | None:
        """Events with seq > ``after`` from the live stream; None when the stream is gone."""
        entries = self.redis.xrange(job_stream(job_id), min=f"(0-{after}", max="+", count=limit)
        if not entries and not self.redis.exists(job_key(job_id)):
            return None
        return [Event.from_stream(fields) for _, fields in entries]

    # --- hypervisors -----------------------------------------------------------------------
    def beat(self, hypervisor: str, info: dict[str, Any], ttl: float) -> None:
        """Publish a worker's heartbeat; it expires unless renewed within ``ttl`` seconds."""
        payload = json.dumps({**info, "last_seen": time.time()})
        pipe = self.redis.pipeline()
        pipe.set(heartbeat_key(hypervisor), payload, px=int(ttl * 1000))
        if info.get("instance"):
            running = json.dumps({"hypervisor": hypervisor, "running": info.get("running", [])})
            pipe.set(instance_key(info["instance"]), running, px=int(ttl * 1000))
        pipe.hset(HYPERVISORS, hypervisor, payload)
        pipe.execute()

    def instance_alive(self, instance: str) -> bool:
        return bool(self.redis.exists(instance_key(instance)))

    def instance_running(self, instance: str) -> set[tuple[str, int]] | None:
        """The attempts the worker process ``instance`` said it runs in its last beat; None
        when it does not beat."""
        raw = self.redis.get(instance_key(instance))
        if raw is None:
            return None
        try:
            running = json.loads(raw).get("running", [])
        except (ValueError, AttributeError):
            return set()
        return {(str(job_id), int(attempt)) for job_id, attempt in running}

    def withdraw(self, hypervisor: str, instance: str) -> None:
        """A worker stopping on purpose: its liveness goes, and the hypervisor's heartbeat too
        unless another process beats for it (then the latest beat is that one's)."""
        self._withdraw(keys=[heartbeat_key(hypervisor), instance_key(instance)], args=[instance])

    def heartbeat(self, hypervisor: str) -> dict[str, Any] | None:
        raw = self.redis.get(heartbeat_key(hypervisor))
        return json.loads(raw) if raw else None

    def hypervisors(self) -> list[dict[str, Any]]:
        """Every hypervisor ever seen, with ``alive`` true when its heartbeat is current."""
        known = self.redis.hgetall(HYPERVISORS)
        names = sorted(known)
        alive = self.redis.mget([heartbeat_key(name) for name in names]) if names else []
        items = []
        for name, beat in zip(names, alive, strict=True):
            info = json.loads(beat or known[name])
            items.append({**info, "name": name, "alive": beat is not None})
        return items

    def running_jobs(self) -> list[dict[str, Any]]:
        """Live state of every job currently claimed by a worker."""
        return [job for job_id in self.redis.smembers(RUNNING_SET) if (job := self.job(job_id))]


def _decoded(job_id: str, raw: dict[str, str]) -> dict[str, Any]:
    decoded: dict[str, Any] = {"id": job_id, **raw}
    for name in ("result", "error", "summary"):
        decoded[name] = json.loads(raw[name]) if raw.get(name) else None
    for name in ("attempt", "seq", "claimed_attempt"):
        if name in raw:
            decoded[name] = int(raw[name])
    for name in ("started_at", "finished_at", "updated_at"):
        if raw.get(name):
            decoded[name] = float(raw[name])
    return decoded


def _emitted(raw: list[Any]) -> Emitted:
    if raw[0] > 0:
        return Emitted(int(raw[0]))
    return Emitted(None, raw[1] if len(raw) > 1 else None)


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, default=str)


def _now() -> str:
    return repr(time.time())
