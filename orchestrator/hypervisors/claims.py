"""Claims in Redis: what placed jobs have reserved on a hypervisor and not yet made.

A claim is taken by one Lua script that re-checks the hypervisor's claims against the limits
the placement decision saw, so concurrent placements never promise the same room twice. Per
hypervisor a hash sums the claims (vCPUs, memory, bytes per pool, jobs provisioning); per claim
a hash says what to give back. ``released`` counts the claims a hypervisor gave back: a
decision made before one of them is stale (its allocation figures may predate the domain that
replaced the claim), and its claim fails so that the caller places again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.placement import Resources

HOST_PREFIX = "orch:claims:host:"
CLAIM_PREFIX = "orch:claims:claim:"
INDEX = "orch:claims:index"
# A limit that never binds: Lua numbers are doubles, and "inf" does not parse everywhere.
NO_LIMIT = 1e300
ANY_RELEASE = "*"  # a claim that skips the staleness check (a job that named its hypervisor)


def host_key(host: str) -> str:
    return HOST_PREFIX + host


def claim_key(claim_id: str) -> str:
    return CLAIM_PREFIX + claim_id


# KEYS: host sums, claim, index. ARGV: claim id, host, released seen, now, provisioning,
# provisioning limit, vcpus, vcpu limit, memory, memory limit, domain, then per pool:
# pool, bytes, limit. Returns {1} or {0, what stopped it}.
_CLAIM = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, 'exists'} end
if ARGV[3] ~= '*' and (redis.call('HGET', KEYS[1], 'released') or '0') ~= ARGV[3] then
  return {0, 'stale'}
end
local function over(field, need, limit)
  if tonumber(need) <= 0 then return false end
  local have = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  return have + tonumber(need) > tonumber(limit)
end
if over('provisioning', ARGV[5], ARGV[6]) then return {0, 'provisioning'} end
if over('vcpus', ARGV[7], ARGV[8]) then return {0, 'vcpus'} end
if over('memory_mib', ARGV[9], ARGV[10]) then return {0, 'memory'} end
for i = 12, #ARGV, 3 do
  if over('disk:' .. ARGV[i], ARGV[i + 1], ARGV[i + 2]) then return {0, 'disk'} end
end
local claim = {'host', ARGV[2], 'created_at', ARGV[4], 'provisioning', ARGV[5],
               'vcpus', ARGV[7], 'memory_mib', ARGV[9], 'domain', ARGV[11]}
redis.call('HINCRBY', KEYS[1], 'provisioning', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'vcpus', ARGV[7])
redis.call('HINCRBY', KEYS[1], 'memory_mib', ARGV[9])
for i = 12, #ARGV, 3 do
  redis.call('HINCRBY', KEYS[1], 'disk:' .. ARGV[i], ARGV[i + 1])
  table.insert(claim, 'disk:' .. ARGV[i]); table.insert(claim, ARGV[i + 1])
end
redis.call('HSET', KEYS[2], unpack(claim))
redis.call('SADD', KEYS[3], ARGV[1])
return {1}
"""

# KEYS: claim by its first id, claim by job id, index. ARGV: first id, job id.
# The claim takes the job's id, so that whatever learns the job ended can find it.
_BIND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], 'job', ARGV[2])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""

# KEYS: claim, index. ARGV: claim id, 'finish' (its job ended: no longer provisioning) or
# 'release' (give everything back), now.
_RELEASE = """
local raw = redis.call('HGETALL', KEYS[1])
if #raw == 0 then redis.call('SREM', KEYS[2], ARGV[1]); return 0 end
local claim = {}
for i = 1, #raw, 2 do claim[raw[i]] = raw[i + 1] end
local hk = 'orch:claims:host:' .. claim['host']
if claim['provisioning'] ~= '0' then
  redis.call('HINCRBY', hk, 'provisioning', 0 - tonumber(claim['provisioning']))
  redis.call('HSET', KEYS[1], 'provisioning', '0', 'finished_at', ARGV[3])
end
if ARGV[2] ~= 'release' then return 1 end
for name, value in pairs(claim) do
  if name == 'vcpus' or name == 'memory_mib' or string.sub(name, 1, 5) == 'disk:' then
    -- 0 - x, not -x: Lua turns -0 into "-0", which HINCRBY refuses.
    redis.call('HINCRBY', hk, name, 0 - tonumber(value))
  end
end
redis.call('HINCRBY', hk, 'released', 1)
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class Limits:
    """The most a hypervisor's claims may sum to, as the decision saw it: its room under the
    ratios less what its domains hold. ``released`` is its release count at that moment."""

    vcpus: float = NO_LIMIT
    memory_mib: float = NO_LIMIT
    disk_bytes: Mapping[str, float] = field(default_factory=dict)
    provisioning: float = NO_LIMIT
    released: str = ANY_RELEASE


@dataclass(frozen=True)
class HostClaims:
    """The sums of one hypervisor's claims. ``listed``: the part of ``claimed`` whose domains
    the hypervisor's heartbeat already lists, so that its allocation holds them too (until the
    recorder drops those claims): counted once, not twice."""

    claimed: Resources = field(default_factory=Resources)
    provisioning: int = 0
    released: str = "0"
    listed: Resources = field(default_factory=Resources)

    @property
    def unlisted(self) -> Resources:
        """What is claimed beyond what the heartbeat's allocation already counts."""
        return Resources(
            max(0, self.claimed.vcpus - self.listed.vcpus),
            max(0, self.claimed.memory_mib - self.listed.memory_mib),
            {
                pool: left
                for pool, amount in self.claimed.disk_bytes.items()
                if (left := amount - self.listed.disk_bytes.get(pool, 0)) > 0
            },
        )


@dataclass(frozen=True)
class Claim:
    """One claim: where, how much, for which job (None until bound) and whose domain."""

    id: str
    host: str
    amount: Resources
    created_at: float
    job: str | None = None
    domain: str | None = None
    finished_at: float | None = None  # when its job ended, once the recorder saw it


class ClaimRefused(Exception):
    """Raised when a claim would take a hypervisor past the limits its decision saw, or the
    decision is stale; ``reason`` says which (``memory``, ``stale``...)."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"claim on {host} refused: {reason}")
        self.host = host
        self.reason = reason


class ClaimBook:
    """The claims in one Redis."""

    def __init__(self, client: Any) -> None:
        self.redis = client
        self._claim = client.register_script(_CLAIM)
        self._bind = client.register_script(_BIND)
        self._release = client.register_script(_RELEASE)

    def claim(
        self,
        host: str,
        amount: Resources,
        limits: Limits,
        *,
        provisioning: bool = True,
        domain: str | None = None,
    ) -> str:
        """Reserve ``amount`` on ``host``; returns the claim's id. Raises ClaimRefused."""
        claim_id = f"unbound-{uuid.uuid4().hex}"
        args: list[Any] = [claim_id, host, limits.released, _now()]
        args += [int(provisioning), limits.provisioning, amount.vcpus, limits.vcpus]
        args += [amount.memory_mib, limits.memory_mib, domain or ""]
        for pool, size in sorted(amount.disk_bytes.items()):
            args += [pool, size, limits.disk_bytes.get(pool, NO_LIMIT)]
        keys = [host_key(host), claim_key(claim_id), INDEX]
        done = self._claim(keys=keys, args=args)
        if done[0] != 1:
            raise ClaimRefused(host, str(done[1]))
        return claim_id

    def bind(self, claim_id: str, job_id: str) -> bool:
        """Name the claim by the job it was made for; False when it is gone."""
        keys = [claim_key(claim_id), claim_key(job_id), INDEX]
        return bool(self._bind(keys=keys, args=[claim_id, job_id]))

    def finish(self, claim_id: str) -> None:
        """The claim's job ended: it no longer counts as provisioning; its resources stay
        claimed until the hypervisor's heartbeat shows what the job made."""
        self._release(keys=[claim_key(claim_id), INDEX], args=[claim_id, "finish", _now()])

    def release(self, claim_id: str) -> None:
        """Give everything the claim holds back (a no-op once given back)."""
        self._release(keys=[claim_key(claim_id), INDEX], args=[claim_id, "release", _now()])

    def finish_many(self, claim_ids: Iterable[str], release: bool) -> None:
        """``finish`` (or ``release``) each of ``claim_ids`` in one round trip; ids without a
        claim are skipped in the script."""
        mode = "release" if release else "finish"
        pipe = self.redis.pipeline(transaction=False)
        for claim_id in claim_ids:
            args = [claim_id, mode, _now()]
            self._release(keys=[claim_key(claim_id), INDEX], args=args, client=pipe)
        pipe.execute()

    def per_host(self, hosts: Iterable[str]) -> dict[str, HostClaims]:
        names = list(hosts)
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(host_key(name))
        return {name: _host_claims(raw) for name, raw in zip(names, pipe.execute(), strict=True)}

    def all(self) -> list[Claim]:
        """Every claim held now."""
        ids = sorted(self.redis.smembers(INDEX))
        pipe = self.redis.pipeline(transaction=False)
        for claim_id in ids:
            pipe.hgetall(claim_key(claim_id))
        return [
            _claim(claim_id, raw) for claim_id, raw in zip(ids, pipe.execute(), strict=True) if raw
        ]


def _host_claims(raw: Mapping[str, str]) -> HostClaims:
    return HostClaims(
        _resources(raw), max(0, int(raw.get("provisioning", 0))), raw.get("released", "0")
    )


def _claim(claim_id: str, raw: Mapping[str, str]) -> Claim:
    return Claim(
        claim_id,
        raw["host"],
        _resources(raw),
        float(raw.get("created_at", 0)),
        raw.get("job"),
        raw.get("domain") or None,
        float(raw["finished_at"]) if raw.get("finished_at") else None,
    )


def _resources(raw: Mapping[str, str]) -> Resources:
    disk = {k[5:]: int(v) for k, v in raw.items() if k.startswith("disk:") and int(v)}
    return Resources(int(raw.get("vcpus", 0)), int(raw.get("memory_mib", 0)), disk)


def _now() -> str:
    return repr(time.time())


def counted_twice(
    claims: Iterable[Claim], listed: Mapping[str, set[str] | None]
) -> dict[str, Resources]:
    """Per hypervisor, the claims whose domain its heartbeat lists (``listed``: host -> domain
    names): room the heartbeat's allocation already holds."""
    sums: dict[str, Resources] = {}
    for claim in claims:
        names = listed.get(claim.host)
        if claim.domain is None or not names or claim.domain not in names:
            continue
        held = sums.get(claim.host, Resources())
        disk = dict(held.disk_bytes)
        for pool, amount in claim.amount.disk_bytes.items():
            disk[pool] = disk.get(pool, 0) + amount
        sums[claim.host] = Resources(
            held.vcpus + claim.amount.vcpus, held.memory_mib + claim.amount.memory_mib, disk
        )
    return sums
