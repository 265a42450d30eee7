"""Fleet jobs through the real stack: HTTP API, recorder, one Celery worker, Redis, SQLite, and
the session's 20 real sshd hosts. One stack serves the whole module to keep it fast."""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests
from rich.console import Console
from sqlalchemy import MetaData, select

from api import create_app
from orchestrator.client import ApiError
from orchestrator.fleet.files import fleet_files_dir
from orchestrator.local import demo_cli, demo_fleet
from orchestrator.local.demo_fleet import fleet_steps
from tests.support.services import RunningStack
from tests.support.services import test_stack as running_stack
from tests.support.sshd import SshdFleet, SshdHost, start_same_port
from workers.fleet_jobs.output import EVENTS_PER_HOST

HV = "hv"


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: str, fleet: SshdFleet
) -> Iterator[RunningStack]:
    with running_stack(
        tmp_path_factory.mktemp("fleet-jobs"), redis_server, {HV: "test:///default"}
    ) as s:
        keys = fleet_files_dir(s.settings) / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        shutil.copy(fleet.client_key, keys / "fleet.key")  # API inventories name keys here
        (keys / "fleet.key").chmod(0o600)
        yield s


@pytest.fixture
def files(stack: RunningStack) -> Path:
    """The worker's fleet-files/ directory, where jobs find local files."""
    return fleet_files_dir(stack.settings)


def inventory_text(fleet: SshdFleet, hosts: list[SshdHost] | None = None, **extra: str) -> str:
    """An INI inventory of ``hosts`` (all by default) in group ``web``, logging in with the
    fleet's key file (in the worker's fleet-files/keys/)."""
    lines = ["[web]"]
    for host in fleet.hosts if hosts is None else hosts:
        settings = {"ansible_host": host.address, "ansible_port": str(host.port), **extra}
        lines.append(host.name + "".join(f" {k}={v}" for k, v in settings.items()))
    lines += [
        "[web:vars]",
        "ansible_user=root",
        "ansible_private_key_file=fleet.key",
    ]
    return "\n".join(lines) + "\n"


def fleet_options(fleet: SshdFleet, **extra: Any) -> dict[str, Any]:
    return {
        "known_hosts_files": [str(fleet.known_hosts)],
        "connect_timeout": 5,
        "connect_retries": 0,
        "command_timeout": 30,
        **extra,
    }


def put_inventory(stack: RunningStack, name: str, text: str, **extra: Any) -> requests.Response:
    url = f"{stack.settings.resolved_api_url}/v1/inventories/{name}"
    return requests.put(url, json={"text": text, **extra}, timeout=10)


def run(stack: RunningStack, kind: str = "fleet.run", **params: Any) -> dict[str, Any]:
    return stack.run(kind, HV, **params)


def wait_for_output(stack: RunningStack, job_id: str, line: str, timeout: float = 60) -> None:
    """Return once the job's events carry the output ``line``."""
    deadline = time.monotonic() + timeout
    while not any(e["message"] == line for e in stack.api.events(job_id)):
        assert time.monotonic() < deadline, f"output {line!r} never arrived"
        time.sleep(0.05)


def wait_for_file(path: Path) -> str:
    """A shell loop that returns once ``path`` exists: every "host" is this machine, so a test
    holds a command at that point until it creates the file. The job's command timeout ends
    the loop should the test fail before that."""
    return f"until [ -e {shlex.quote(str(path))} ]; do sleep 0.05; done"


def summary_of(job: dict[str, Any]) -> dict[str, Any]:
    """Per-host results and recap: the result of a success, inside the error of a failure."""
    return job["result"] if job["state"] == "succeeded" else job["error"]["result"]


def test_a_command_on_all_20_hosts_reports_each_host_a_recap_and_streams_output(
    stack: RunningStack, fleet: SshdFleet
) -> None:
    assert put_inventory(stack, "all20", inventory_text(fleet)).status_code == 201
    job = run(
        stack,
        inventory_name="all20",
        call={"module": "shell", "cmd": "echo out-line; echo err-line >&2"},
        options=fleet_options(fleet),
    )

    assert job["state"] == "succeeded", job["error"]
    names = [h.name for h in fleet.hosts]
    result = job["result"]
    assert list(result["hosts"]) == names
    assert all(result["hosts"][h]["status"] == "changed" for h in names)  # as Ansible's shell
    assert all(result["hosts"][h]["stdout"] == "out-line\n" for h in names)
    assert result["totals"] == {
        "hosts": 20, "ok": 20, "changed": 20, "failed": 0, "unreachable": 0, "skipped": 0
    }  # fmt: skip
    assert result["recap"][names[0]] == {
        "ok": 1, "changed": 1, "unreachable": 0, "failed": 0, "skipped": 0
    }  # fmt: skip
    assert len(result["recap_text"].splitlines()) == 20
    assert job["params"]["inventory_version"] == 1  # the version that ran is recorded
    events = stack.api.events(job["id"])
    for name in names:
        mine = [e for e in events if e["host"] == name]
        assert any(e["message"] == "out-line" and e["data"]["stream"] == "stdout" for e in mine)
        # (stderr may also carry a login shell's warnings, in the same batch)
        assert any(
            "err-line" in e["message"].splitlines() and e["data"]["stream"] == "stderr"
            for e in mine
        )
        assert any(e["message"] == "changed (rc=0)" for e in mine)
    assert any(e["message"].startswith("recap\n") for e in events)


def test_output_arrives_as_events_while_the_command_still_runs(
    stack: RunningStack, fleet: SshdFleet, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    submitted = stack.submit(
        "fleet.run",
        HV,
        inventory=inventory_text(fleet, fleet.hosts[:1]),
        call={"module": "shell", "cmd": f"echo first; {wait_for_file(release)}; echo second"},
        options=fleet_options(fleet),
    )
    try:
        wait_for_output(stack, submitted["id"], "first")

        # The command cannot get past the wait until the file exists: it is still running.
        assert stack.api.job(submitted["id"])["state"] == "running"
        assert "second" not in [e["message"] for e in stack.api.events(submitted["id"])]
    finally:
        release.touch()
    assert stack.api.wait(submitted["id"], timeout=60)["state"] == "succeeded"
    output = [e["message"] for e in stack.api.events(submitted["id"])]
    assert output.index("first") < output.index("second")


def test_cancelling_a_running_fleet_job_skips_the_hosts_not_yet_started(
    stack: RunningStack, fleet: SshdFleet, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    submitted = stack.submit(
        "fleet.run",
        HV,
        inventory=inventory_text(fleet, fleet.hosts[:4]),
        call={"module": "shell", "cmd": f"echo started; {wait_for_file(release)}"},
        options=fleet_options(fleet, serial=1),
    )
    try:
        wait_for_output(stack, submitted["id"], "started")
        url = f"{stack.settings.resolved_api_url}/v1/jobs/{submitted['id']}/cancel"
        # Accepted while the first host is held: the request is stored before the answer, so
        # the worker sees it before it would start the second host.
        assert requests.post(url, timeout=10).status_code == 202
    finally:
        release.touch()

    done = stack.api.wait(submitted["id"], timeout=60)

    assert done["state"] == "failed"
    assert "cancelled" in done["error"]["detail"]
    summary = summary_of(done)
    assert (summary["totals"]["ok"], summary["totals"]["skipped"]) == (1, 3)
    names = [h.name for h in fleet.hosts[:4]]
    assert summary["hosts"][names[0]]["status"] == "changed"  # the one running finished
    assert [summary["hosts"][n]["status"] for n in names[1:]] == ["skipped"] * 3
    started = [e for e in stack.api.events(submitted["id"]) if e["message"] == "started"]
    assert len(started) == 1


def test_an_unreachable_host_is_reported_apart_and_relaunch_reruns_only_it(
    stack: RunningStack, fleet: SshdFleet, spare_host: SshdHost
) -> None:
    hosts = [*fleet.hosts[:3], spare_host]
    spare_host.stop()
    job = run(
        stack,
        inventory=inventory_text(fleet, hosts),
        call={"module": "command", "argv": ["true"]},
        options=fleet_options(fleet),
    )

    assert job["state"] == "failed"
    assert job["error"]["detail"] == "0 failed, 1 unreachable of 4 hosts"
    summary = summary_of(job)
    assert summary["hosts"][spare_host.name]["status"] == "unreachable"
    assert "refused" in summary["hosts"][spare_host.name]["error"]
    assert [h for h, r in summary["hosts"].items() if r["status"] == "changed"] == [
        h.name for h in fleet.hosts[:3]
    ]

    relaunch_url = f"{stack.settings.resolved_api_url}/v1/jobs/{job['id']}/relaunch"
    nothing = requests.post(relaunch_url, json={"hosts": "failed"}, timeout=10)
    assert nothing.status_code == 409
    assert "no failed hosts" in nothing.json()["detail"]

    start_same_port(spare_host)
    accepted = requests.post(relaunch_url, json={"hosts": "unreachable"}, timeout=10)
    assert accepted.status_code == 202, accepted.text
    again = stack.api.wait(accepted.json()["id"], timeout=60)
    assert again["kind"] == "fleet.run" and again["hypervisor"] == HV
    assert again["params"]["relaunch_of"] == job["id"]
    assert again["state"] == "succeeded", again["error"]
    assert list(again["result"]["hosts"]) == [spare_host.name]


def test_copy_twice_reports_changed_once(
    stack: RunningStack, fleet: SshdFleet, files: Path, tmp_path: Path
) -> None:
    (files / "files").mkdir(exist_ok=True)  # what copy sends lives in fleet-files/files/
    (files / "files" / "motd.txt").write_text("welcome\n")
    dest = tmp_path / "motd"  # every "host" is this machine: one host, one destination
    params: dict[str, Any] = {
        "inventory": inventory_text(fleet, fleet.hosts[:1]),
        "call": {"module": "copy", "src": "motd.txt", "dest": str(dest), "mode": "0640"},
        "options": fleet_options(fleet),
    }
    first, second = run(stack, **params), run(stack, **params)

    host = fleet.hosts[0].name
    assert first["state"] == second["state"] == "succeeded"
    assert first["result"]["hosts"][host]["changed"] is True
    assert second["result"]["hosts"][host]["changed"] is False
    assert second["result"]["totals"]["changed"] == 0
    assert dest.read_text() == "welcome\n"


def test_a_directory_in_fleet_files_is_copied_with_its_trailing_slash_meaning_kept(
    stack: RunningStack, fleet: SshdFleet, files: Path, tmp_path: Path
) -> None:
    (files / "files" / "site" / "css").mkdir(parents=True, exist_ok=True)
    (files / "files" / "site" / "css" / "main.css").write_text("body {}\n")
    dest = tmp_path / "www"
    job = run(
        stack,
        inventory=inventory_text(fleet, fleet.hosts[:1]),
        call={"module": "copy", "src": "site/", "dest": str(dest)},
        options=fleet_options(fleet),
    )
    assert job["state"] == "succeeded", job["error"]
    assert (dest / "css" / "main.css").read_text() == "body {}\n"  # the contents, not site/


def test_local_paths_outside_fleet_files_are_refused_at_submit(
    stack: RunningStack, fleet: SshdFleet
) -> None:
    inventory = inventory_text(fleet, fleet.hosts[:1])
    for call, field in [
        ({"module": "copy", "src": "/etc/shadow", "dest": "/tmp/x"}, "src"),
        ({"module": "script", "path": "../../run.sh"}, "path"),
        ({"module": "fetch", "src": "/etc/hostname", "dest": "~/loot"}, "dest"),
    ]:
        with pytest.raises(ApiError) as refused:
            stack.submit("fleet.run", HV, inventory=inventory, call=call)
        problem = refused.value.problem
        assert problem["status"] == 422
        assert problem["errors"][0]["field"] == "params.call"
        assert field in problem["errors"][0]["message"]


def test_output_events_are_batched_and_capped_per_host(
    stack: RunningStack, fleet: SshdFleet
) -> None:
    job = run(
        stack,
        inventory=inventory_text(fleet, fleet.hosts[:1]),
        call={"module": "shell", "cmd": "seq 1 300000"},  # about 2 MB
        options=fleet_options(fleet),
    )

    host = fleet.hosts[0].name
    assert job["state"] == "succeeded"
    assert job["result"]["hosts"][host]["stdout_truncated"] is True  # 1 MiB kept by default
    events = [e for e in stack.api.events(job["id"]) if e["host"] == host]
    output = [e for e in events if (e["data"] or {}).get("stream") == "stdout"]
    assert len(output) == EVENTS_PER_HOST
    assert output[0]["message"].splitlines()[:3] == ["1", "2", "3"]
    (notice,) = [e for e in events if "not sent as events" in e["message"]]
    streamed = sum(e["data"]["lines"] for e in output)
    # Every line the executor kept (up to its 1 MiB cap) is either streamed or counted.
    kept = job["result"]["hosts"][host]["stdout"].splitlines()
    assert abs(streamed + notice["data"]["output_lines_dropped"] - len(kept)) <= 1


def test_ping_with_host_key_checking_off_says_so(stack: RunningStack, fleet: SshdFleet) -> None:
    job = run(
        stack,
        "fleet.ping",
        inventory=inventory_text(fleet, fleet.hosts[:2]),
        options={"host_key_policy": "off"},  # and the default known_hosts files
    )

    assert job["state"] == "succeeded"
    assert job["on_worker_lost"] == "rerun"  # ping changes nothing, so it may run again
    assert job["result"]["host_key_policy"] == "off"
    assert {r["host_key_check"] for r in job["result"]["hosts"].values()} == {"off"}
    events = stack.api.events(job["id"])
    assert any(
        e["level"] == "warning" and "host key checking is off" in e["message"] for e in events
    )


def test_a_pattern_matching_no_host_fails_the_job(stack: RunningStack, fleet: SshdFleet) -> None:
    job = run(
        stack,
        inventory=inventory_text(fleet, fleet.hosts[:2]),
        pattern="db",
        call={"module": "ping"},
        options=fleet_options(fleet),
    )

    assert job["state"] == "failed"
    assert job["error"]["detail"] == "pattern 'db' matched no hosts"
    assert job["on_worker_lost"] == "fail"  # fleet.run commands have side effects


def test_passwords_never_reach_events_results_sql_redis_or_logs(
    stack: RunningStack, fleet: SshdFleet, files: Path, tmp_path: Path
) -> None:
    login_secret = f"login-{uuid.uuid4().hex}"
    become_secret = f"become-{uuid.uuid4().hex}"
    # Passwords sent through the API are refused, and the refusal does not repeat them.
    with_password = inventory_text(fleet, fleet.hosts[:1], ansible_password=login_secret)
    refused = put_inventory(stack, "leaky", with_password)
    assert refused.status_code == 422 and login_secret not in refused.text
    with pytest.raises(ApiError) as inline:
        stack.submit("fleet.run", HV, inventory=with_password, call={"module": "ping"})
    assert inline.value.problem["status"] == 422 and login_secret not in str(inline.value.problem)

    # On the worker they are used: host_vars under vars_dir (whose own inventory declares the
    # host where the API inventory puts it), and an inventory file.
    vars_dir = files / "secret-vars" / "host_vars"
    vars_dir.mkdir(parents=True, exist_ok=True)
    (files / "secret-vars" / "hosts.ini").write_text(inventory_text(fleet, fleet.hosts[:1]))
    (vars_dir / f"{fleet.hosts[0].name}.yml").write_text(
        f"ansible_password: {login_secret}\nansible_become: true\n"
        f"ansible_become_password: {become_secret}\n"
    )
    (files / "with-passwords.ini").write_text(
        inventory_text(
            fleet,
            fleet.hosts[1:2],
            ansible_password=login_secret,
            ansible_become="true",
            ansible_become_password=become_secret,
        )
    )
    printed = tmp_path / "secrets.txt"  # the remote command prints both secrets
    printed.write_text(f"{login_secret}\n{become_secret}\n")
    assert put_inventory(stack, "clean", inventory_text(fleet, fleet.hosts[:1])).status_code == 201
    call = {"module": "command", "argv": ["cat", str(printed)]}
    jobs = [
        run(
            stack,
            inventory_name="clean",
            vars_dir="secret-vars",
            call=call,
            options=fleet_options(fleet),
        ),
        run(stack, inventory_path="with-passwords.ini", call=call, options=fleet_options(fleet)),
    ]

    for job in jobs:
        assert job["state"] == "succeeded", job["error"]
        (host_result,) = job["result"]["hosts"].values()
        assert host_result["stdout"] == "********\n********\n"
        events = stack.api.events(job["id"])
        assert any(e["message"] == "********\n********" for e in events)
        stack.wait_recorded(job["id"], "succeeded")
    secrets = (login_secret, become_secret)
    seen = {
        "api": str(jobs) + str([stack.api.events(j["id"]) for j in jobs]),
        "sql": _dump_sql(stack),
        "redis": _dump_redis(stack),
        "worker log": stack.workers[HV].log_path.read_text(errors="replace"),
        "api log": stack.service("api").log_path.read_text(errors="replace"),
    }
    for where, text in seen.items():
        for secret in secrets:
            assert secret not in text, f"a password reached the {where}"


def test_inventories_are_versioned_and_preview_what_a_pattern_selects(
    stack: RunningStack, fleet: SshdFleet
) -> None:
    api = stack.settings.resolved_api_url
    first = "[web]\nw1\nw2\n[db]\nd1\n"
    second = "web:\n  hosts:\n    w1:\n    w2:\n    w3:\ndb:\n  hosts:\n    d1:\n"
    created = put_inventory(stack, "site", first, format="ini")
    assert created.status_code == 201
    assert created.json()["version"] == 1
    assert created.headers["Location"] == "/v1/inventories/site?version=1"
    assert put_inventory(stack, "site", second).json()["version"] == 2

    listed = requests.get(f"{api}/v1/inventories", timeout=10).json()["items"]
    assert {"name": "site", "version": 2, "format": "yaml"}.items() <= next(
        i for i in listed if i["name"] == "site"
    ).items()
    latest = requests.get(f"{api}/v1/inventories/site", timeout=10).json()
    assert (latest["version"], latest["text"]) == (2, second)
    old = requests.get(f"{api}/v1/inventories/site?version=1", timeout=10).json()
    assert (old["version"], old["format"], old["text"]) == (1, "ini", first)

    def hosts(query: str) -> dict[str, Any]:
        answer = requests.get(f"{api}/v1/inventories/site/hosts?{query}", timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert hosts("pattern=web")["hosts"] == ["w1", "w2", "w3"]
    assert hosts("pattern=web&limit=w2,d1&version=1")["hosts"] == ["w2"]
    assert hosts("pattern=all:!web")["hosts"] == ["d1"]
    assert hosts("pattern=nothere")["warnings"] == [
        "Could not match supplied host pattern, ignoring: nothere"
    ]
    assert hosts("pattern=hypervisors&builtin_groups=true")["hosts"] == [HV]
    # test:///default runs one domain, "test", whose lease the worker's heartbeat reports
    assert hosts("pattern=domains&builtin_groups=true")["hosts"] == ["test"]

    bad = put_inventory(stack, "site", "[web\nw1\n")
    assert bad.status_code == 422 and "no closing ']'" in bad.json()["detail"]
    assert requests.get(f"{api}/v1/inventories/nope", timeout=10).status_code == 404
    missing = requests.get(f"{api}/v1/inventories/site?version=9", timeout=10)
    assert missing.status_code == 404
    with pytest.raises(ApiError) as unknown:
        stack.submit("fleet.run", HV, inventory_name="nope", call={"module": "ping"})
    assert unknown.value.problem["errors"][0]["field"] == "params.inventory_name"


def test_running_commands_needs_the_fleet_exec_scope(stack: RunningStack, fleet: SshdFleet) -> None:
    tokens = {
        "reader": ["jobs:read"],
        "submitter": ["jobs:read", "jobs:submit"],
        "operator": ["jobs:read", "fleet:exec"],
    }
    app = create_app(stack.settings, test_config={"API_TOKENS": tokens, "TESTING": True})
    client = app.test_client()
    body = {
        "kind": "fleet.ping",
        "hypervisor": HV,
        "params": {
            "inventory": inventory_text(fleet, fleet.hosts[:1]),
            "options": fleet_options(fleet),
        },
    }

    def post(token: str | None, job: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.post("/v1/jobs", json=job, headers=headers)

    assert post(None, body).status_code == 401
    assert post("forged", body).status_code == 401
    for token in ("reader", "submitter"):  # storage and domain jobs are not commands on hosts
        forbidden = post(token, body)
        assert forbidden.status_code == 403
        assert "'fleet:exec'" in forbidden.json["detail"]
    assert (
        client.get("/v1/inventories", headers={"Authorization": "Bearer reader"}).status_code == 200
    )
    accepted = post("operator", body)
    assert accepted.status_code == 202
    assert accepted.json["submitter"].startswith("env:")
    assert stack.api.wait(accepted.json["id"], timeout=60)["state"] == "succeeded"
    ping = {"kind": "ping", "hypervisor": HV}
    assert post("operator", ping).status_code == 403  # fleet:exec is for fleet kinds only
    assert post("submitter", ping).status_code == 202


def _dump_sql(stack: RunningStack) -> str:
    metadata = MetaData()
    with stack.session() as session:
        metadata.reflect(bind=session.get_bind())
        return "\n".join(
            str(row) for table in metadata.sorted_tables for row in session.execute(select(table))
        )


def _dump_redis(stack: RunningStack) -> str:
    client = stack.live.redis
    readers = {
        "string": client.get,
        "hash": client.hgetall,
        "list": lambda key: client.lrange(key, 0, -1),
        "set": client.smembers,
        "zset": lambda key: client.zrange(key, 0, -1),
        "stream": client.xrange,
    }
    return "\n".join(
        f"{key} {readers[client.type(key)](key)}"
        for key in client.scan_iter(count=1000)
        if client.type(key) in readers
    )


def test_the_demo_runs_uname_then_the_cli_live_and_failing_on_its_own_hosts_then_stops_them(
    stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = Console(record=True, width=400, force_terminal=False)
    monkeypatch.setattr(demo_fleet, "console", printed)
    monkeypatch.setattr(demo_cli, "console", printed)
    with ExitStack() as cleanup:
        uname, live, failing = [step(stack.api, stack.settings) for _, step in fleet_steps(cleanup)]
    output = printed.export_text()
    inventory = stack.api.get(f"/v1/inventories/{demo_fleet.INVENTORY}")["text"]
    hosts = re.findall(r"^(\S+) ansible_host=(\S+) ansible_port=(\d+)", inventory, re.MULTILINE)
    assert len(hosts) == demo_fleet.HOSTS

    assert uname["state"] == "succeeded", uname["error"]
    assert uname["result"]["totals"]["ok"] == demo_fleet.HOSTS
    assert all("Linux" in r["stdout"] for r in uname["result"]["hosts"].values())
    # The CLI exits 0, having printed each host's lines as events under the host's name.
    assert live["state"] == "succeeded", live["error"]
    assert (live["result"]["exit code"], live["result"]["state"]) == (0, "succeeded")
    for name, _address, _port in hosts:
        shown = re.findall(rf"{name}: line (\d) of 3 at ", output)
        assert shown == ["1", "2", "3"], output
    # A command that fails on every host: the job fails, and the CLI exits 1 saying so.
    assert failing["state"] == "succeeded", failing["error"]
    assert (failing["result"]["exit code"], failing["result"]["state"]) == (1, "failed")
    assert "exit code 1: the job failed" in output
    assert failing["result"]["recap"].count("failed=1") == demo_fleet.HOSTS
    for _name, address, port in hosts:  # the demo's sshd hosts are stopped
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, int(port)), timeout=2).close()
