"""Benchmark of the fleet executor against ansible, parallel-ssh and plain paramiko.

Runs ``uname -a`` on 10, 50 and 100 local sshd hosts (our executor cold and warm, ``ansible
all -m command``, parallel-ssh's ParallelSSHClient cold and warm, paramiko in a thread pool),
then copies a 10 MB file to 20 hosts with each. Prints a table and writes
bench/results/fleet.json. Usage: .venv/bin/python -m bench.fleet [--forks N] [--sizes 10,50,100]
[--forks-sweep 5,10,20,50] (ours alone at each forks value on the largest size).

Every client logs in as the same throwaway unprivileged user (``orchbench``, shell /bin/sh),
created for the run and removed afterwards: a fleet host's login costs what its account's
shell setup costs, and this machine's root profile is far heavier than a managed host's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import paramiko

from bench.login_user import LoginUser, throwaway_user
from orchestrator.fleet.calls import CommandCall, CopyCall
from orchestrator.fleet.options import FleetOptions
from orchestrator.local.sshd_hosts import SshdFleet, SshdHost, missing_parts, start_fleet
from workers.fleet.connections import ConnectionPool
from workers.fleet.executor import run_fleet

RESULTS = Path(__file__).parent / "results" / "fleet.json"
VENV_BIN = Path(sys.executable).parent
COPY_HOSTS = 20
COPY_BYTES = 10 * 1024 * 1024
UNAME_ARGS = ["-m", "command", "-a", "uname -a"]
LOGIN_USER = "orchbench"


def measure(fn: Callable[[], int], hosts: int, children: bool = False) -> dict[str, Any]:
    """Wall time and client CPU time (this process, or reaped child processes) of ``fn``;
    ``fn`` returns how many hosts succeeded."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    before, started = resource.getrusage(who), time.perf_counter()
    ok = fn()
    wall = time.perf_counter() - started
    after = resource.getrusage(who)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "hosts": hosts,
        "ok": ok,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_host": round(cpu * 1000 / hosts, 2),
        "wall_ms_per_host": round(wall * 1000 / hosts, 2),
    }


def ours(fleet: SshdFleet, hosts: list[SshdHost], pool: ConnectionPool, forks: int) -> int:
    options = FleetOptions(known_hosts_files=(str(fleet.known_hosts),), forks=forks)
    result = run_fleet(fleet.targets(hosts), CommandCall(argv=["uname", "-a"]), options, pool=pool)
    return len(result.succeeded)


def write_inventory(fleet: SshdFleet, hosts: list[SshdHost], path: Path) -> None:
    lines = ["[all]"]
    for h in hosts:
        lines.append(
            f"{h.name} ansible_host={h.address} ansible_port={h.port} ansible_user={fleet.user} "
            f"ansible_ssh_private_key_file={fleet.client_key} "
            "ansible_python_interpreter=/usr/bin/python3"
        )
    path.write_text("\n".join(lines) + "\n")


def ansible(
    fleet: SshdFleet, hosts: list[SshdHost], forks: int, module_args: list[str], work: Path
) -> int:
    inventory = work / f"inventory-{len(hosts)}.ini"
    write_inventory(fleet, hosts, inventory)
    env = {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_LOCAL_TEMP": str(work / "ansible-local"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp"),
        # Short ControlPersist so the master processes exit on their own soon after the run.
        "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=2s "
        f"-o UserKnownHostsFile={fleet.known_hosts}",
        "ANSIBLE_STDOUT_CALLBACK": "oneline",
    }
    run = subprocess.run(
        [str(VENV_BIN / "ansible"), "all", "-i", str(inventory), "-f", str(forks), *module_args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return sum(
        1 for line in run.stdout.splitlines() if " | CHANGED" in line or " | SUCCESS" in line
    )


def pssh_client(fleet: SshdFleet, hosts: list[SshdHost], forks: int) -> Any:
    from pssh.clients import ParallelSSHClient
    from pssh.config import HostConfig

    configs = [
        HostConfig(port=h.port, user=fleet.user, private_key=str(fleet.client_key)) for h in hosts
    ]
    return ParallelSSHClient(
        [h.address for h in hosts], host_config=configs, pool_size=forks, allow_agent=False
    )


def pssh_run(client: Any) -> int:
    output = client.run_command("uname -a")
    client.join(output)
    return sum(1 for o in output if o.exit_code == 0 and list(o.stdout))


def plain_client(fleet: SshdFleet, host: SshdHost) -> paramiko.SSHClient:
    """A paramiko client logged in to ``host`` the plain way, as the thread-pool anchor does."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(fleet.known_hosts))
    try:
        client.connect(
            host.address,
            host.port,
            fleet.user,
            key_filename=str(fleet.client_key),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
    except BaseException:
        client.close()
        raise
    return client


def plain_paramiko(fleet: SshdFleet, hosts: list[SshdHost], forks: int) -> int:
    def one(h: SshdHost) -> bool:
        client = plain_client(fleet, h)
        try:
            _, stdout, _ = client.exec_command("uname -a")
            return bool(stdout.read()) and stdout.channel.recv_exit_status() == 0
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=forks) as pool:
        return sum(pool.map(one, hosts))


def bench_uname(fleet: SshdFleet, sizes: list[int], forks: int, work: Path) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        hosts = fleet.hosts[:size]
        pool = ConnectionPool()
        run_ours = partial(ours, fleet, hosts, pool, forks)
        pssh = pssh_client(fleet, hosts, forks)  # connects lazily, on the first run
        tools: list[tuple[str, Callable[[], int], bool]] = [
            ("ours cold", run_ours, False),
            ("ours warm", run_ours, False),
            ("ansible", partial(ansible, fleet, hosts, forks, UNAME_ARGS, work), True),
            ("parallel-ssh cold", partial(pssh_run, pssh), False),
            ("parallel-ssh warm", partial(pssh_run, pssh), False),
            ("paramiko threads", partial(plain_paramiko, fleet, hosts, forks), False),
        ]
        batch = [
            {"tool": tool, "task": "uname -a", **measure(fn, size, children)}
            for tool, fn, children in tools
        ]
        pool.close_all()
        del pssh
        print_rows(batch)
        rows += batch
        time.sleep(2.5)  # let ansible's ControlPersist masters exit before the next size
    return rows


def bench_forks(fleet: SshdFleet, size: int, values: list[int]) -> list[dict[str, Any]]:
    """Ours alone, cold then warm, at several ``forks`` values on ``size`` hosts: how much
    parallelism pays off when client and hosts share this machine's cores."""
    rows = []
    for forks in values:
        pool = ConnectionPool()
        run_ours = partial(ours, fleet, fleet.hosts[:size], pool, forks)
        for phase in ("cold", "warm"):
            tool = f"ours {phase} forks={forks}"
            rows.append({"tool": tool, "task": "uname -a sweep", **measure(run_ours, size)})
        pool.close_all()
    print_rows(rows)
    return rows


def bench_copy(fleet: SshdFleet, login: LoginUser, forks: int, work: Path) -> list[dict[str, Any]]:
    """Copy 10 MB to 20 hosts. The loopback hosts share one filesystem, so every tool writes
    a per-host destination path (in the login user's home, which only it may write); our copy
    therefore runs once per host (in parallel)."""
    hosts = fleet.hosts[:COPY_HOSTS]
    blob = work / "blob.bin"
    blob.write_bytes(os.urandom(COPY_BYTES))
    dest = login.home / "dest"
    rows = []

    def fresh(tool: str) -> Path:
        target = dest / tool
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for path in (dest, target):
            os.chown(path, login.uid, -1)
        return target

    def our_copy() -> int:
        out = fresh("ours")
        pool = ConnectionPool()
        options = FleetOptions(known_hosts_files=(str(fleet.known_hosts),), forks=1)

        def one(h: SshdHost) -> int:
            call = CopyCall(src=str(blob), dest=str(out / h.name), mode="0644")
            return len(run_fleet(fleet.targets([h]), call, options, pool=pool).succeeded)

        try:
            with ThreadPoolExecutor(max_workers=forks) as threads:
                return sum(threads.map(one, hosts))
        finally:
            pool.close_all()

    def ansible_copy() -> int:
        out = fresh("ansible")
        args = ["-m", "copy", "-a", f"src={blob} dest={out}/{{{{ inventory_hostname }}}}"]
        return ansible(fleet, hosts, forks, args, work)

    def pssh_copy() -> int:
        out = fresh("pssh")
        client = pssh_client(fleet, hosts, forks)
        greenlets = client.copy_file(
            str(blob), f"{out}/%(name)s", copy_args=[{"name": h.name} for h in hosts]
        )
        client.pool.join()
        return sum(1 for g in greenlets if g.exception is None)

    def paramiko_copy() -> int:
        out = fresh("paramiko")

        def one(h: SshdHost) -> bool:
            client = plain_client(fleet, h)
            try:
                with client.open_sftp() as sftp:
                    sftp.put(str(blob), str(out / h.name))
                return True
            finally:
                client.close()

        with ThreadPoolExecutor(max_workers=forks) as threads:
            return sum(threads.map(one, hosts))

    for tool, fn, children in (
        ("ours cold", our_copy, False),
        ("ansible", ansible_copy, True),
        ("parallel-ssh cold", pssh_copy, False),
        ("paramiko threads", paramiko_copy, False),
    ):
        rows.append({"tool": tool, "task": "copy 10 MB", **measure(fn, len(hosts), children)})
    print_rows(rows)
    return rows


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ours over the others, per task and host count (below 1 means ours is faster)."""
    out = []
    by_key = {(r["task"], r["hosts"], r["tool"]): r for r in rows}
    for (task, hosts, tool), row in by_key.items():
        if tool != "ours cold":
            continue
        for other in ("ansible", "parallel-ssh cold", "paramiko threads", "ours warm"):
            ref = by_key.get((task, hosts, other))
            if ref is None:
                continue
            name = "warm/cold" if other == "ours warm" else f"ours/{other}"
            num, den = (ref, row) if other == "ours warm" else (row, ref)
            out.append(
                {
                    "task": task,
                    "hosts": hosts,
                    "ratio": name,
                    "wall": round(num["wall_s"] / den["wall_s"], 3) if den["wall_s"] else None,
                    "cpu": round(num["cpu_s"] / den["cpu_s"], 3) if den["cpu_s"] else None,
                }
            )
    return out


# The targets: (name, numerator tool, denominator tool, bound, "min" or "max").
TARGETS = (
    ("ansible / ours cold >= 5", "ansible", "ours cold", 5.0, "min"),
    ("ours cold / parallel-ssh cold <= 1.2", "ours cold", "parallel-ssh cold", 1.2, "max"),
    ("ours cold / ours warm >= 3", "ours cold", "ours warm", 3.0, "min"),
)


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target per host count of the ``uname -a`` runs (the task the targets are set
    for), on wall time: the ratio and whether it is met."""
    by_key = {(r["task"], r["hosts"], r["tool"]): r for r in rows}
    out = []
    for task, hosts in sorted({(r["task"], r["hosts"]) for r in rows if r["task"] == "uname -a"}):
        for name, num_tool, den_tool, bound, kind in TARGETS:
            num, den = by_key.get((task, hosts, num_tool)), by_key.get((task, hosts, den_tool))
            if num is None or den is None or not den["wall_s"]:
                continue
            value = round(num["wall_s"] / den["wall_s"], 2)
            met = value >= bound if kind == "min" else value <= bound
            out.append({"task": task, "hosts": hosts, "target": name, "value": value, "met": met})
    return out


def print_rows(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        print(
            f"{r['task']:<11} {r['hosts']:>4} {r['tool']:<18} ok={r['ok']:<4} "
            f"wall={r['wall_s']:>7.2f}s cpu={r['cpu_s']:>7.2f}s "
            f"cpu/host={r['cpu_ms_per_host']:>7.1f}ms",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--sizes", default="10,50,100")
    parser.add_argument(
        "--forks-sweep", default="", help="also time ours alone at these forks, e.g. 5,10,20,50"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    sweep = [int(s) for s in args.forks_sweep.split(",") if s]
    reason = missing_parts()
    if reason:
        sys.exit(f"cannot run: {reason}")
    # SIGTERM unwinds like Ctrl-C, so the sshd hosts and the login user are always removed.
    signal.signal(signal.SIGTERM, _interrupted)
    started = time.perf_counter()
    fleet = start_fleet(max(*sizes, COPY_HOSTS))
    print(f"started {len(fleet.hosts)} sshd hosts in {time.perf_counter() - started:.1f}s")
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    try:
        public_key = Path(f"{fleet.client_key}.pub").read_text()
        with throwaway_user(LOGIN_USER, public_key) as login:
            fleet.user = login.name
            try:
                rows = bench_uname(fleet, sizes, args.forks, work)
                rows += bench_forks(fleet, max(sizes), sweep)
                rows += bench_copy(fleet, login, args.forks, work)
            finally:
                fleet.stop()  # before the user goes, so no session of it is left running
    finally:
        fleet.stop()
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "forks": args.forks,
        "login_user": f"{LOGIN_USER} (unprivileged, shell /bin/sh, removed after the run)",
        "note": "CPU is the client side only (sshd excluded); ansible's is its reaped "
        "child processes. All hosts are sshd processes on this machine's loopback.",
        "rows": rows,
        "ratios": ratios(rows),
        "targets": targets(rows),
    }
    print("\nratios (ours cold / other; warm/cold = ours warm / ours cold)")
    for r in report["ratios"]:
        print(f"{r['task']:<11} {r['hosts']:>4} {r['ratio']:<24} wall={r['wall']} cpu={r['cpu']}")
    print("\ntargets (wall time)")
    for t in report["targets"]:
        verdict = "met" if t["met"] else "NOT met"
        print(f"{t['task']:<11} {t['hosts']:>4} {t['target']:<38} {t['value']:>6} {verdict}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    main()
