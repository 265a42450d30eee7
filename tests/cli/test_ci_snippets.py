"""The CI jobs of docs/ci.md, run as their CI runs them against a live stack: each ``run:`` step
(GitHub Actions) or ``script:`` and ``after_script:`` (GitLab CI) through bash, in order, with
the job's own variables, the CI's secrets and variables pointing at the test's API and token.

The stack's worker serves a test-driver hypervisor named, like its pool and base image, as the
snippet's variables say; its network "leases" a loopback address to a VM, where a real sshd
on port 22 stands in for the guest and authorizes the key the worker holds as ``ci.key``.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import requests
import yaml

from orchestrator.client import ApiClient, ApiError
from orchestrator.fleet.files import KEYS_AREA, fleet_files_dir
from orchestrator.local.sshd_hosts import SshdHost, keygen, missing_parts
from tests.provision.conftest import BASE_SIZE, ISO, NODE_XML
from tests.support import services
from tests.support.services import RunningStack
from tests.support.sshd import logins, start_same_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "ci.md"
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)
GITHUB_EXPRESSION = re.compile(r"\$\{\{\s*([\w.]+)\s*\}\}")
SHELL_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
TOKEN_SCOPES = ["jobs:read", "jobs:submit", "fleet:exec"]
WORKER_KEY = "ci.key"  # where docs/ci.md says the operator puts the CI's key on each worker
# The guest is an sshd of this machine, which logs in root with the key (there is no user "ci").
OVERRIDES = {"VM_USER": "root"}
SCRIPT_TIMEOUT = 240  # seconds; below the test's own timeout, so a hang shows its log


@dataclass(frozen=True)
class Script:
    """One shell script of a CI job, and how its CI runs it."""

    name: str
    text: str
    shell: tuple[str, ...]
    always: bool  # runs after an earlier script failed too


@dataclass(frozen=True)
class CiJob:
    """A CI job's scripts and environment as its CI hands them to the shell."""

    env: dict[str, str]
    scripts: list[Script]


@dataclass(frozen=True)
class Finished:
    script: Script
    code: int
    output: str


@dataclass(frozen=True)
class CiStore:
    """What a project keeps in its CI settings: the API's address and the token."""

    api_url: str
    token: str


def yaml_blocks() -> list[dict[str, Any]]:
    return [yaml.safe_load(block) for block in YAML_BLOCK.findall(DOC.read_text())]


def github_job(store: CiStore) -> CiJob:
    """The workflow's one job: each ``run:`` step as GitHub's default ``bash -e {0}``, after
    GitHub has replaced the ``${{ }}`` expressions of its ``env:``."""
    workflow = next(block for block in yaml_blocks() if "jobs" in block)
    (job,) = workflow["jobs"].values()
    run_id = str(random.randint(10**9, 10**10))
    context = {
        "github.run_id": run_id,
        "github.run_attempt": "1",
        "vars.ORCH_API_URL": store.api_url,
        "secrets.ORCH_API_TOKEN": store.token,
    }
    env = {
        name: GITHUB_EXPRESSION.sub(lambda m: context[m[1]], str(value))
        for name, value in job["env"].items()
    }
    scripts = [
        Script(step["name"], step["run"], ("bash", "-e", "-c"), step.get("if") == "always()")
        for step in job["steps"]
        if "run" in step
    ]
    return CiJob({"CI": "true", "GITHUB_RUN_ID": run_id, **env}, scripts)


def gitlab_job(store: CiStore) -> CiJob:
    """The job's ``before_script`` and ``script`` as one shell, its ``after_script`` as another
    that runs whatever happened, with ``variables:`` expanded as GitLab expands them."""
    block = next(block for block in yaml_blocks() if "jobs" not in block)
    (job,) = block.values()
    predefined = {
        "CI": "true",
        "CI_JOB_ID": str(random.randint(10**8, 10**9)),
        "CI_PIPELINE_ID": str(random.randint(10**7, 10**8)),
        # Project CI/CD variables: GitLab puts them in the job's environment as they are.
        "ORCH_API_URL": store.api_url,
        "ORCH_API_TOKEN": store.token,
    }
    env = {
        name: SHELL_VARIABLE.sub(lambda m: predefined[m[1] or m[2]], str(value))
        for name, value in job["variables"].items()
    }
    shell = ("bash", "-eo", "pipefail", "-c")
    main = "\n".join([*job["before_script"], *job["script"]])
    after = "\n".join(job["after_script"])
    return CiJob(
        {**predefined, **env},
        [Script("script", main, shell, False), Script("after_script", after, shell, True)],
    )


def run_ci_job(job: CiJob, workspace: Path) -> list[Finished]:
    """Each script in order, in one workspace; after a failure only those that always run."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("ORCH_", "CI"))}
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**inherited, "PATH": path, **job.env, **OVERRIDES}
    finished: list[Finished] = []
    for index, script in enumerate(job.scripts):
        if not script.always and any(f.code != 0 for f in finished):
            continue
        # A file, not a pipe: what a script printed stays readable when it hangs.
        log = workspace.parent / f"script-{index}.log"
        with log.open("w") as output:
            code = _run_script(script, workspace, env, output)
        finished.append(Finished(script, code, log.read_text()))
    return finished


def _run_script(script: Script, workspace: Path, env: dict[str, str], output: IO[str]) -> int:
    """The script's exit code; one still running after SCRIPT_TIMEOUT is stopped with every
    process it started (its own session), and counts as failed."""
    process = subprocess.Popen(
        [*script.shell, script.text],
        cwd=workspace,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        return process.wait(timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        output.write(f"\n(stopped after {SCRIPT_TIMEOUT} s)\n")
        return -1


class BootingGuest:
    """The VM's sshd: comes up on port 22 of the address the hypervisor gives the VM, once the
    API reports one, as a booting guest's would. (The test driver's "lease" depends on how many
    domains the worker made before, so the address is not known in advance.)"""

    def __init__(self, directory: Path, authorized_keys: Path) -> None:
        self.directory = directory
        self.authorized_keys = authorized_keys
        self.host: SshdHost | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def boot_when_addressed(self, api: ApiClient, hypervisor: str, vm: str) -> None:
        self._thread = threading.Thread(target=self._watch, args=(api, hypervisor, vm))
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.host is not None:
            self.host.stop()

    def _watch(self, api: ApiClient, hypervisor: str, vm: str) -> None:
        while not self._stop.wait(0.3):
            try:
                address = api.get(f"/v1/domains/{hypervisor}/{vm}").get("address")
            except (ApiError, requests.RequestException):
                continue  # not defined yet
            if address:
                self.host = self._sshd_on_port_22(address)
                return

    def _sshd_on_port_22(self, address: str) -> SshdHost:
        """Started once on a free port, which writes its configuration, then on 22, as the
        provision tests' guest is."""
        host = SshdHost("guest", address, self.directory, self.authorized_keys)
        host.prepare()
        host.start()
        host.stop()
        config = host.dir / "sshd_config"
        config.write_text(config.read_text().replace(f":{host.port}\n", ":22\n", 1))
        host.port = 22
        start_same_port(host)
        return host


@dataclass(frozen=True)
class Lab:
    """The live stack the CI job talks to, and the test-driver hypervisor's guest."""

    stack: RunningStack
    store: CiStore
    guest: BootingGuest
    hypervisor: str
    pool: str
    base_image: str

    @property
    def api(self) -> ApiClient:
        return ApiClient(self.store.api_url, token=self.store.token)


CI_JOBS: dict[str, Callable[[CiStore], CiJob]] = {"github": github_job, "gitlab": gitlab_job}


@pytest.fixture(params=sorted(CI_JOBS))
def ci(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def lab(ci: str, tmp_path: Path, redis_server: str) -> Iterator[Lab]:
    reason = missing_parts() or _missing_tools()
    if reason:
        pytest.skip(reason)
    # The hypervisor, pool and base image the snippet names (the API and token come later).
    variables = CI_JOBS[ci](CiStore("", "")).env
    hypervisor, pool, base = variables["HYPERVISOR"], variables["POOL"], variables["BASE_IMAGE"]
    node = tmp_path / "node.xml"
    node.write_text(_node_xml(pool, base, tmp_path / "var" / "pools" / pool))
    client_key = tmp_path / "client_key"
    (tmp_path / "authorized_keys").write_text(keygen(client_key) + "\n")
    guest = BootingGuest(tmp_path / "guest", tmp_path / "authorized_keys")
    token = f"ci-{uuid.uuid4().hex}"
    try:
        with services.test_stack(
            tmp_path, redis_server, {hypervisor: f"test://{node}"}, api_tokens={token: TOKEN_SCOPES}
        ) as stack:
            key = fleet_files_dir(stack.settings) / KEYS_AREA / WORKER_KEY
            key.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(client_key, key)
            key.chmod(0o600)
            store = CiStore(stack.settings.resolved_api_url, token)
            yield Lab(stack, store, guest, hypervisor, pool, base)
    finally:
        guest.stop()


def _missing_tools() -> str | None:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    return f"the snippets need {', '.join(missing)} (deploy/host/prepare.sh)" if missing else None


def _node_xml(pool: str, base: str, pool_dir: Path) -> str:
    """The provision tests' node, on a loopback /24 of its own (no other test's sshd listens
    on port 22 there), its pool a directory in the pool roots."""
    subnet = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    pool_dir.mkdir(parents=True)
    xml = NODE_XML.format(subnet=subnet, pool=pool, base=base, base_size=BASE_SIZE, iso=ISO)
    return xml.replace(f"<path>/{pool}", f"<path>{pool_dir}")


def test_the_ci_job_provisions_a_vm_runs_a_command_on_it_and_leaves_nothing(
    ci: str, lab: Lab, tmp_path: Path
) -> None:
    job = CI_JOBS[ci](lab.store)
    vm = job.env["VM_NAME"]
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    lab.guest.boot_when_addressed(lab.api, lab.hypervisor, vm)

    finished = run_ci_job(job, workspace)

    log = "\n".join(f"--- {f.script.name} (exit {f.code})\n{f.output}" for f in finished)
    assert [(f.script.name, f.code) for f in finished] == [(s.name, 0) for s in job.scripts], log
    # The VM was there: the fleet job logged in at the address the VM was given, and the
    # command's output (the guest is this machine) came back under the VM's name.
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True, check=True)
    assert uname.stdout.strip() in log
    assert lab.guest.host is not None and logins(lab.guest.host) >= 1
    provisioned = _only_job(lab, "vm.provision", vm)
    assert provisioned["state"] == "succeeded"
    assert provisioned["result"]["readiness"] == "ssh"
    assert provisioned["result"]["address"] == lab.guest.host.address
    ran = _only_job(lab, "fleet.run", vm)
    assert ran["state"] == "succeeded"
    assert list(ran["result"]["hosts"]) == [vm]
    assert ran["result"]["hosts"][vm]["stdout"].strip() == uname.stdout.strip()
    # And is gone: no domain, and of the pool's volumes only those the hypervisor had before.
    with pytest.raises(ApiError) as missing:
        lab.api.get(f"/v1/domains/{lab.hypervisor}/{vm}")
    assert missing.value.status == 404
    volumes = lab.api.get(f"/v1/hypervisors/{lab.hypervisor}/pools/{lab.pool}/volumes")
    assert sorted(v["name"] for v in volumes["volumes"]) == sorted([lab.base_image, ISO])
    assert _only_job(lab, "domain.undefine", vm)["state"] == "succeeded"


def _only_job(lab: Lab, kind: str, vm: str) -> dict[str, Any]:
    """The one job of ``kind`` about ``vm`` (by name or, for a fleet job, by pattern)."""
    jobs = [
        job
        for job in lab.api.list_jobs({"kind": kind, "limit": 100})
        if vm in (job["params"].get("name"), job["params"].get("pattern"))
    ]
    assert len(jobs) == 1, jobs
    return jobs[0]
