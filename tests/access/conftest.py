"""A stack with tokens on: one bootstrap token per scope (ORCH_API_TOKENS), a worker on a
test-driver hypervisor, and helpers to call it over HTTP as a given token."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from orchestrator.access.scopes import ALL_SCOPES
from orchestrator.access.tokens import bootstrap_name, create_token
from orchestrator.local.stack import child_env
from tests.support.services import RunningStack, test_stack

HV = "hv1"


@dataclass
class SecuredStack:
    """The running stack, and the secret of the bootstrap token holding each single scope."""

    stack: RunningStack
    secrets_by_scope: dict[str, str]

    @property
    def url(self) -> str:
        return self.stack.settings.resolved_api_url

    def secret(self, scope: str) -> str:
        return self.secrets_by_scope[scope]

    def name(self, scope: str) -> str:
        return bootstrap_name(self.secrets_by_scope[scope])

    def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs)

    def as_scope(self, scope: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.call(method, path, self.secret(scope), **kwargs)

    def team_tokens(self, *names: str) -> dict[str, str]:
        """A token per team ``names``, each able to read and submit: name -> secret."""
        made = {}
        with self.stack.session() as session:
            for name in names:
                _, made[name] = create_token(session, name, ["jobs:read", "jobs:submit"])
        return made

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """The real ``orchestrator`` command on this stack's database and API."""
        return run_cli(self.stack, *args, **env)


def run_cli(stack: RunningStack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``env``: more ``ORCH_*`` variables, named without the prefix (``API_TOKEN="..."``)."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=child_env(stack.settings, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, redis_server: str) -> Iterator[SecuredStack]:
    by_scope = {scope: secrets.token_urlsafe(24) for scope in ALL_SCOPES}
    tokens = {secret: [scope] for scope, secret in by_scope.items()}
    tmp = tmp_path_factory.mktemp("access")
    with test_stack(tmp, redis_server, {HV: "test:///default"}, api_tokens=tokens) as stack:
        yield SecuredStack(stack, by_scope)
