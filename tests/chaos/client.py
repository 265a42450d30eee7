"""HTTP as the chaos driver speaks it: every answer counted, each 5xx kept with what was asked,
submissions retried under one Idempotency-Key, and bad inputs that must each get a 4xx."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from orchestrator.jobs.lifecycle import JobState

# Bodies the API must refuse with a 4xx whatever the state of Redis, the recorder or the
# workers: each is (method, path, raw body or JSON, extra headers).
BAD_INPUTS: list[tuple[str, str, Any, dict[str, str]]] = [
    ("POST", "/v1/jobs", '{"kind": "ping", ', {"Content-Type": "application/json"}),
    ("POST", "/v1/jobs", {"kind": "no.such.kind", "params": {}}, {}),
    ("POST", "/v1/jobs", {"kind": "ping", "params": {"delay": -1}}, {}),
    (
        "POST",
        "/v1/jobs",
        {
            "kind": "vm.provision",
            "params": {"name": "../etc", "memory_mib": 32, "disk": {"pool": "p", "size": "1G"}},
        },
        {},
    ),
    (
        "POST",
        "/v1/jobs",
        {
            "kind": "vm.provision",
            "params": {"name": "ok", "memory_mib": 8, "disk": {"pool": "bad/pool", "size": "1G"}},
        },
        {},
    ),
    (
        "POST",
        "/v1/jobs",
        {"kind": "fleet.ping", "params": {"inventory_path": "/etc/shadow"}},
        {},
    ),
    ("POST", "/v1/jobs", {"kind": "ping", "params": {}}, {"Idempotency-Key": " "}),
    ("GET", "/v1/jobs/0000-not-a-job", None, {}),
    ("GET", "/v1/jobs", {"state": "exploded"}, {}),
]


@dataclass
class Tally:
    """What every client of one run saw, shared across threads."""

    answers: int = 0
    unreachable: int = 0
    server_errors: list[str] = field(default_factory=list)
    bad_inputs: int = 0
    bad_inputs_accepted: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, method: str, path: str, response: requests.Response) -> None:
        with self.lock:
            self.answers += 1
            if response.status_code >= 500:
                self.server_errors.append(
                    f"{method} {path} -> {response.status_code}: {response.text[:300]}"
                )


class CountingClient:
    """One thread's HTTP session to the API; answers land in the shared ``tally``."""

    def __init__(self, base_url: str, tally: Tally, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.tally = tally
        self.timeout = timeout
        self.http = requests.Session()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        """The answer, or None when the API could not be reached (it is down, or restarting)."""
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.http.request(method, f"{self.base_url}{path}", **kwargs)
        except requests.RequestException:
            with self.tally.lock:
                self.tally.unreachable += 1
            return None
        self.tally.answered(method, path, response)
        return response

    def submit(self, body: dict[str, Any], key: str, give_up_after: float) -> dict[str, Any]:
        """The job the API stored for ``body``: sent again under the same key until answered,
        so a request whose answer was lost (the API died mid-request) makes one job."""
        deadline = time.monotonic() + give_up_after
        while True:
            answer = self.request("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": key})
            if answer is not None and answer.status_code in (200, 202):
                return dict(answer.json())
            if answer is not None and answer.status_code < 500 and answer.status_code != 429:
                raise SubmitRefused(
                    f"{body['kind']} refused: {answer.status_code} {answer.text}",
                    answer.status_code,
                )
            if time.monotonic() > deadline:
                raise SubmitRefused(f"{body['kind']} never accepted in {give_up_after:g}s", None)
            time.sleep(0.2)

    def job(self, job_id: str, wait: float = 0) -> dict[str, Any] | None:
        params = {"wait": wait} if wait else None
        answer = self.request("GET", f"/v1/jobs/{job_id}", params=params, timeout=wait + 30)
        if answer is None or answer.status_code != 200:
            return None
        return dict(answer.json())

    def wait_final(self, job_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        """Each job's last document seen; those not final when ``timeout`` ran out included."""
        seen: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        for job_id in job_ids:
            while True:
                left = deadline - time.monotonic()
                doc = self.job(job_id, wait=max(0.0, min(10.0, left)))
                if doc is not None:
                    seen[job_id] = doc
                    if JobState(doc["state"]).is_terminal:
                        break
                if left <= 0:
                    break
                if doc is None:
                    time.sleep(0.2)
        return seen

    def hypervisor_domains(self) -> dict[str, set[str]] | None:
        """The domains each hypervisor's libvirt holds, as its worker's heartbeat reports."""
        answer = self.request("GET", "/v1/hypervisors")
        if answer is None or answer.status_code != 200:
            return None
        return {
            item["name"]: {d["name"] for d in (item.get("capacity") or {}).get("domains") or []}
            for item in answer.json()["items"]
        }

    def send_bad_input(self, rng: random.Random) -> None:
        """One refused request; a 2xx (it was taken) or a 5xx is a finding."""
        method, path, body, headers = rng.choice(BAD_INPUTS)
        if method == "GET":
            answer = self.request(method, path, params=body, headers=headers)
        elif isinstance(body, str):
            answer = self.request(method, path, data=body, headers=headers)
        else:
            answer = self.request(method, path, json=body, headers=headers)
        if answer is None:
            return
        with self.tally.lock:
            self.tally.bad_inputs += 1
            if answer.status_code < 400:
                shown = body if isinstance(body, str) else json.dumps(body)
                self.tally.bad_inputs_accepted.append(
                    f"{method} {path} {shown} -> {answer.status_code}"
                )


class SubmitRefused(RuntimeError):
    """Raised when the API refuses a job the driver sends, or never answers for it."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status
