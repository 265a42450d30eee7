"""Fleet secrets stay with their hosts, tried through the real stack (HTTP API, recorder, a
Celery worker, Redis) on real sshd hosts: a host an API inventory adds or moves never gets the
passwords the worker keeps, a password goes only where the host key is known, fetch writes only
into its job's area, copy and script read only the files area, and API inventories name key
files only inside the keys area."""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.client import ApiError
from orchestrator.fleet.files import fleet_files_dir
from tests.fleet.conftest import FLEET_SIZE
from tests.support.services import RunningStack
from tests.support.services import test_stack as running_stack
from tests.support.sshd import SshdFleet, SshdHost, start_same_port

HV = "hv"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: str, fleet: SshdFleet
) -> Iterator[RunningStack]:
    with running_stack(
        tmp_path_factory.mktemp("fleet-secrets"), redis_server, {HV: "test:///default"}
    ) as s:
        yield s


@pytest.fixture
def files(stack: RunningStack, fleet: SshdFleet) -> Iterator[Path]:
    """The worker's fleet-files/ with the fleet's client key in keys/fleet.key; emptied after
    each test."""
    root = fleet_files_dir(stack.settings)
    (root / "keys").mkdir(parents=True, exist_ok=True)
    shutil.copy(fleet.client_key, root / "keys" / "fleet.key")
    (root / "keys" / "fleet.key").chmod(0o600)
    yield root
    shutil.rmtree(root)


@dataclass
class LoginUser:
    name: str
    password: str


@pytest.fixture(scope="module")
def login_user() -> Iterator[LoginUser]:
    """A local user with a password, for sshd hosts that accept password logins."""
    user = LoginUser(f"fleetpw{secrets.token_hex(4)}", secrets.token_urlsafe(18))
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", user.name], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{user.name}:{user.password}\n", text=True, check=True)
        yield user
    finally:
        subprocess.run(["userdel", user.name], check=True)


class Watched:
    """An sshd host that accepts passwords and logs every authentication request; ``since``
    reads what it logged after the last ``mark``."""

    def __init__(self, host: SshdHost) -> None:
        self.host = host
        self._offset = 0

    def mark(self) -> None:
        self._offset = self.host.log.stat().st_size

    def since(self) -> str:
        with self.host.log.open(errors="replace") as log:
            log.seek(self._offset)
            return log.read()

    def password_requests(self) -> list[str]:
        return [line for line in self.since().splitlines() if "method password" in line]

    def connections(self) -> list[str]:
        return [line for line in self.since().splitlines() if "Connection from" in line]


@pytest.fixture
def password_hosts(fleet: SshdFleet) -> Iterator[Callable[[], Watched]]:
    """Makes sshd hosts that take password logins and log at DEBUG3 (in the fleet's
    known_hosts, like every fleet host); stops them afterwards."""
    made: list[SshdHost] = []

    def make() -> Watched:
        (host,) = fleet.add_hosts(1, FLEET_SIZE + 10 + len(fleet.hosts))
        made.append(host)
        host.stop()
        config = host.dir / "sshd_config"
        text = config.read_text().replace("PasswordAuthentication no", "PasswordAuthentication yes")
        config.write_text(text.replace("LogLevel VERBOSE", "LogLevel DEBUG3"))
        start_same_port(host)
        watched = Watched(host)
        watched.mark()
        return watched

    yield make
    for host in made:
        host.stop()
        fleet.hosts.remove(host)
    fleet.write_known_hosts()


def write_site(files: Path, name: str, hosts: list[SshdHost], **group_vars: str) -> str:
    """The operator's inventory directory ``name``: group ``web`` of ``hosts`` at their
    addresses, and ``group_vars/web.yml`` with ``group_vars``."""
    site = files / name
    (site / "group_vars").mkdir(parents=True)
    lines = ["[web]", *(f"{h.name} ansible_host={h.address} ansible_port={h.port}" for h in hosts)]
    (site / "hosts.ini").write_text("\n".join(lines) + "\n")
    (site / "group_vars" / "web.yml").write_text(
        "".join(f"{key}: {value}\n" for key, value in group_vars.items())
    )
    return name


def api_inventory(*entries: tuple[str, SshdHost], **host_vars: str) -> str:
    """An INI inventory naming each (name, host) pair in group ``web``, as an API user writes
    one: any name, any address."""
    extra = "".join(f" {k}={v}" for k, v in host_vars.items())
    return (
        "\n".join(
            ["[web]"]
            + [
                f"{name} ansible_host={h.address} ansible_port={h.port}{extra}"
                for name, h in entries
            ]
        )
        + "\n"
    )


def options(fleet: SshdFleet, **extra: Any) -> dict[str, Any]:
    return {
        "known_hosts_files": [str(fleet.known_hosts)],
        "connect_timeout": 5,
        "auth_timeout": 5,
        "connect_retries": 0,
        "command_timeout": 30,
        **extra,
    }


def run(stack: RunningStack, **params: Any) -> dict[str, Any]:
    return stack.run("fleet.run", HV, **params)


def refused_at_submit(stack: RunningStack, **params: Any) -> dict[str, Any]:
    with pytest.raises(ApiError) as refused:
        stack.submit("fleet.run", HV, **params)
    problem: dict[str, Any] = refused.value.problem
    assert problem["status"] == 422, problem
    return problem


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its content's digest."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def warnings_for(stack: RunningStack, job_id: str, host: str) -> list[str]:
    events = stack.api.events(job_id)
    return [e["message"] for e in events if e["host"] == host and e["level"] == "warning"]


def test_a_host_added_through_the_api_inherits_no_password_from_the_workers_group_vars(
    stack: RunningStack,
    fleet: SshdFleet,
    files: Path,
    login_user: LoginUser,
    password_hosts: Callable[[], Watched],
) -> None:
    real, posing = password_hosts(), password_hosts()
    site = write_site(
        files,
        "site",
        [real.host],
        ansible_user=login_user.name,
        ansible_password=login_user.password,
    )
    job = run(
        stack,
        inventory=api_inventory(("extra", posing.host)),  # joins group web, whose vars hold it
        vars_dir=site,
        call={"module": "command", "argv": ["whoami"]},
        options=options(
            fleet, host_key_policy="accept-new", known_hosts_store="store"
        ),  # nothing forces strict for a host without a password
    )

    assert job["state"] == "failed"
    extra = job["error"]["result"]["hosts"]["extra"]
    assert extra["status"] == "unreachable"
    assert f"authentication failed for {login_user.name}@" in extra["error"]
    assert "password" not in extra["error"]  # only what the host was given: nothing
    assert posing.connections(), "the job did reach the host"
    assert posing.password_requests() == []
    assert login_user.password not in posing.since()
    (warning,) = warnings_for(stack, job["id"], "extra")
    assert "ansible_password" in warning and "operator's own entry" in warning


def test_an_operators_host_moved_by_an_api_inventory_is_refused_before_any_connection(
    stack: RunningStack,
    fleet: SshdFleet,
    files: Path,
    login_user: LoginUser,
    password_hosts: Callable[[], Watched],
) -> None:
    real, posing = password_hosts(), password_hosts()
    site = write_site(
        files,
        "site",
        [real.host],
        ansible_user=login_user.name,
        ansible_password=login_user.password,
    )
    name = real.host.name
    moved_port = api_inventory((name, real.host)).replace(
        f"ansible_port={real.host.port}", f"ansible_port={posing.host.port}"
    )
    assert requests.put(
        f"{stack.settings.resolved_api_url}/v1/inventories/moved",
        json={"text": api_inventory((name, posing.host))},
        timeout=10,
    ).ok
    attempts: list[dict[str, Any]] = [
        {"inventory_name": "moved"},  # another address (a stored inventory)
        {"inventory": moved_port},  # the same address, another port
        {"inventory": api_inventory((name, real.host), ansible_user="root")},  # another user
    ]
    for inventory in attempts:
        job = run(
            stack,
            **inventory,
            vars_dir=site,
            call={"module": "command", "argv": ["whoami"]},
            # strict, and the posing host's key is known: checking keys alone would not stop it
            options=options(fleet),
        )

        assert job["state"] == "failed"
        assert job["error"]["status"] == 422
        assert f"host {name}: the job sends it to " in job["error"]["detail"]
        assert "go only to the operator's own host entries" in job["error"]["detail"]
        assert "ansible_password" in job["error"]["detail"]
        assert login_user.password not in str(job)
    assert posing.connections() == [] and real.connections() == []


def test_a_password_goes_only_to_a_host_whose_key_is_known(
    stack: RunningStack,
    fleet: SshdFleet,
    files: Path,
    login_user: LoginUser,
    password_hosts: Callable[[], Watched],
) -> None:
    real = password_hosts()
    site = write_site(
        files,
        "site",
        [real.host],
        ansible_user=login_user.name,
        ansible_password=login_user.password,
    )
    whoami = {"module": "command", "argv": ["whoami"]}
    for policy in ("accept-new", "off"):
        job = run(
            stack,
            inventory_path=site,
            call=whoami,
            options=options(fleet, host_key_policy=policy, known_hosts_store="store"),
        )
        assert job["state"] == "failed"
        assert job["error"]["status"] == 422
        assert (
            f"host_key_policy {policy!r} is refused: hosts {real.host.name}"
            in (job["error"]["detail"])
        )
        assert job["error"]["errors"][0]["field"] == "params.options.host_key_policy"
    assert real.connections() == []

    # Strict, through the operator's own inventory and through an API inventory that names
    # the operator's host where the operator put it: the password is used.
    jobs = [
        run(stack, inventory_path=site, call=whoami, options=options(fleet)),
        run(
            stack,
            inventory=api_inventory((real.host.name, real.host)),
            vars_dir=site,
            call=whoami,
            options=options(fleet),
        ),
    ]
    for job in jobs:
        assert job["state"] == "succeeded", job["error"]
        assert job["result"]["hosts"][real.host.name]["stdout"] == f"{login_user.name}\n"
    # The worker keeps the connection warm: the second job may ride the first one's login.
    logins = sum(not job["result"]["hosts"][real.host.name]["reused_connection"] for job in jobs)
    assert real.since().count(f"Accepted password for {login_user.name}") == logins >= 1


def test_a_become_password_also_needs_strict_host_key_checking(
    stack: RunningStack, fleet: SshdFleet, files: Path
) -> None:
    become_secret = f"become-{uuid.uuid4().hex}"
    site = write_site(
        files,
        "site",
        fleet.hosts[:2],
        ansible_user="root",
        ansible_private_key_file="fleet.key",  # relative: in fleet-files/keys/
        ansible_become="true",
        ansible_become_password=become_secret,
    )
    call = {"module": "command", "argv": ["id", "-un"]}
    refused = run(
        stack,
        inventory_path=site,
        call=call,
        options=options(fleet, host_key_policy="accept-new", known_hosts_store="store"),
    )
    assert refused["state"] == "failed" and refused["error"]["status"] == 422
    assert (
        f"hosts {fleet.hosts[0].name}, {fleet.hosts[1].name} would be sent a password"
        in (refused["error"]["detail"])
    )

    job = run(stack, inventory_path=site, call=call, options=options(fleet))
    assert job["state"] == "succeeded", job["error"]
    assert {r["stdout"] for r in job["result"]["hosts"].values()} == {"root\n"}
    assert become_secret not in str(job) + str(stack.api.events(job["id"]))


def test_fetch_writes_only_into_its_jobs_area_and_refuses_a_host_named_group_vars(
    stack: RunningStack, fleet: SshdFleet, files: Path, tmp_path: Path
) -> None:
    site = write_site(files, "site", fleet.hosts[:1], ansible_user="root")
    secret = tmp_path / "remote.yml"  # every "host" is this machine
    secret.write_text("ansible_password: planted\n")
    host = fleet.hosts[0]
    before = tree(files)
    fetch = {"module": "fetch", "src": str(secret), "dest": site}

    refused = run(
        stack,
        inventory=api_inventory(("group_vars", host), ansible_private_key_file="fleet.key"),
        call=fetch,
        options=options(fleet),
    )
    assert refused["state"] == "failed" and refused["error"]["status"] == 422
    assert (
        "host group_vars: 'group_vars' is a reserved directory name" in (refused["error"]["detail"])
    )
    assert tree(files) == before
    escape = refused_at_submit(
        stack,
        inventory=api_inventory((host.name, host), ansible_private_key_file="fleet.key"),
        call={**fetch, "dest": "../site"},
    )
    assert "dest must not contain '..' components" in escape["errors"][0]["message"]

    job = run(
        stack,
        inventory=api_inventory((host.name, host), ansible_private_key_file="fleet.key"),
        call=fetch,  # dest "site" names a directory of the job's area, not the operator's site/
        options=options(fleet),
    )
    assert job["state"] == "succeeded", job["error"]
    landed = f"fetched/{job['id']}/site/{host.name}{secret}"
    after = tree(files)
    assert {k: v for k, v in after.items() if k not in before} == {landed: before_digest(secret)}
    assert {k: v for k, v in after.items() if k in before} == before
    assert job["result"]["hosts"][host.name]["data"]["dest"] == str(files / landed)


def before_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_copy_and_script_send_only_files_from_the_files_area(
    stack: RunningStack, fleet: SshdFleet, files: Path, tmp_path: Path
) -> None:
    host = fleet.hosts[0]
    inventory = api_inventory(
        (host.name, host), ansible_user="root", ansible_private_key_file="fleet.key"
    )
    (files / "files").mkdir()
    (files / "files" / "motd.txt").write_text("welcome\n")
    (files / "files" / "key-link").symlink_to(files / "keys" / "fleet.key")
    dest = tmp_path / "copied"

    for call in (
        {"module": "copy", "src": "../keys/fleet.key", "dest": str(dest)},
        {"module": "script", "path": "../keys/fleet.key"},
    ):
        problem = refused_at_submit(stack, inventory=inventory, call=call)
        assert "must not contain '..' components" in problem["errors"][0]["message"]
    for src in ("keys/fleet.key", "key-link"):  # files/keys/ does not exist; the link leads out
        job = run(
            stack,
            inventory=inventory,
            call={"module": "copy", "src": src, "dest": str(dest)},
            options=options(fleet),
        )
        assert job["state"] == "failed", src
        assert not dest.exists()
    assert "leads outside the worker's fleet-files/files/ directory" in job["error"]["detail"]

    job = run(
        stack,
        inventory=inventory,
        call={"module": "copy", "src": "motd.txt", "dest": str(dest)},
        options=options(fleet),
    )
    assert job["state"] == "succeeded", job["error"]
    assert dest.read_text() == "welcome\n"


def test_api_inventories_name_key_files_only_inside_the_keys_area(
    stack: RunningStack, fleet: SshdFleet, files: Path
) -> None:
    host = fleet.hosts[0]
    url = f"{stack.settings.resolved_api_url}/v1/inventories/keyed"
    for path in (str(fleet.client_key), "~/.ssh/id_ed25519", "../keys/fleet.key"):
        text = api_inventory((host.name, host), ansible_ssh_private_key_file=path)
        stored = requests.put(url, json={"text": text}, timeout=10)
        assert stored.status_code == 422, path
        assert "relative to the worker's fleet-files/keys/ directory" in stored.json()["detail"]
        problem = refused_at_submit(stack, inventory=text, call={"module": "ping"})
        assert "fleet-files/keys/" in problem["errors"][0]["message"]
    assert requests.get(url, timeout=10).status_code == 404  # nothing was stored

    text = api_inventory(
        (host.name, host), ansible_user="root", ansible_private_key_file="fleet.key"
    )
    assert requests.put(url, json={"text": text}, timeout=10).status_code == 201
    job = stack.run("fleet.ping", HV, inventory_name="keyed", options=options(fleet))
    assert job["state"] == "succeeded", job["error"]


def test_inventories_and_stores_stay_out_of_the_areas_jobs_write_or_keys_live_in(
    stack: RunningStack, fleet: SshdFleet, files: Path
) -> None:
    host = fleet.hosts[0]
    site = write_site(
        files, "site", [host], ansible_user="root", ansible_private_key_file="fleet.key"
    )
    ping = {"module": "ping"}
    for params, field in [
        ({"inventory_path": "keys/fleet.key"}, "inventory_path"),
        ({"inventory_path": "."}, "inventory_path"),
        ({"inventory": api_inventory((host.name, host)), "vars_dir": "fetched/x"}, "vars_dir"),
    ]:
        problem = refused_at_submit(stack, **params, call=ping)
        assert problem["errors"][0]["field"] == f"params.{field}"
    (files / "innocent").symlink_to(files / "keys")
    job = run(stack, inventory_path="innocent/fleet.key", call=ping, options=options(fleet))
    assert job["state"] == "failed" and job["error"]["status"] == 422
    assert "inventory_path must not lie in fleet-files/keys/" in job["error"]["detail"]

    # accept-new writes its store under known_hosts/, whatever path the job gives.
    before = tree(files / site)
    job = run(
        stack,
        inventory_path=site,
        call=ping,
        options=options(
            fleet,
            known_hosts_files=[],
            host_key_policy="accept-new",
            known_hosts_store=f"{site}/group_vars/web.yml",
        ),
    )
    assert job["state"] == "succeeded", job["error"]
    assert tree(files / site) == before
    recorded = (files / "known_hosts" / site / "group_vars" / "web.yml").read_text()
    assert recorded.startswith(f"[{host.address}]:{host.port} ssh-ed25519 ")
