"""A small HTTP client of the API, for the CLI, the demo and the benchmarks."""

from __future__ import annotations

import os
import time
from typing import Any

import requests

from orchestrator.jobs.lifecycle import JobState


class ApiError(RuntimeError):
    """Raised when the API answers with a problem document."""

    def __init__(self, problem: dict[str, Any]) -> None:
        self.problem = problem
        super().__init__(f"{problem.get('status')} {problem.get('title')}: {problem.get('detail')}")


class ApiClient:
    """``token`` defaults to ``ORCH_API_TOKEN`` from the environment, sent as a bearer token."""

    def __init__(
        self,
        base_url: str,
        session: requests.Session | None = None,
        token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = session or requests.Session()
        token = token if token is not None else os.environ.get("ORCH_API_TOKEN")
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def submit(self, body: dict[str, Any], wait: float = 0, **headers: str) -> dict[str, Any]:
        """The new job; with ``wait`` (at most 300 s), once it finished or the wait ran out."""
        params = {"wait": wait} if wait else None
        response = self.http.post(
            f"{self.base_url}/v1/jobs", json=body, params=params, headers=headers
        )
        return self._check(response)

    def job(self, job_id: str, wait: float = 0) -> dict[str, Any]:
        params = {"wait": wait} if wait else None
        return self._check(self.http.get(f"{self.base_url}/v1/jobs/{job_id}", params=params))

    def wait(self, job_id: str, timeout: float = 300.0) -> dict[str, Any]:
        """The job once it is finished (long-polls the API in slices of at most 60 s)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            job = self.job(job_id, wait=max(0.0, min(60.0, left)))
            if JobState(job["state"]).is_terminal or left <= 0:
                return job

    def events(self, job_id: str, after: int = 0) -> list[dict[str, Any]]:
        url = f"{self.base_url}/v1/jobs/{job_id}/events"
        return self._check(self.http.get(url, params={"after": after}))["items"]

    def list_jobs(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return self._check(self.http.get(f"{self.base_url}/v1/jobs", params=filters))["items"]

    def get(self, path: str) -> Any:
        return self._check(self.http.get(f"{self.base_url}{path}"))

    @staticmethod
    def _check(response: requests.Response) -> Any:
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"status": response.status_code, "detail": response.text}
            raise ApiError(problem)
        return response.json()
