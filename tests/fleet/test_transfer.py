"""copy and fetch: idempotence, modes, atomic placement, the fetch size cap."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from orchestrator.fleet.calls import CopyCall, FetchCall
from orchestrator.fleet.results import HostStatus
from workers.fleet.executor import run_fleet


def test_copy_twice_changes_once_and_sets_the_mode(fleet, options, pool, tmp_path: Path) -> None:
    src = tmp_path / "app.conf"
    src.write_text("listen = 8080\n")
    dest = tmp_path / "etc" / "app.conf"
    dest.parent.mkdir()
    call = CopyCall(src=str(src), dest=str(dest), mode="0600", owner="root", group="root")
    targets = fleet.targets()[:1]

    first = run_fleet(targets, call, options, pool=pool)
    second = run_fleet(targets, call, options, pool=pool)

    assert [r.changed for r in first.values()] == [True]
    assert [r.status for r in second.values()] == [HostStatus.OK]
    assert dest.read_text() == "listen = 8080\n"
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert first[targets[0].name].data["checksum"] == second[targets[0].name].data["checksum"]


def test_copy_of_same_content_with_new_mode_only_changes_the_mode(
    fleet, options, pool, tmp_path: Path
) -> None:
    src = tmp_path / "tool"
    src.write_text("#!/bin/sh\n")
    dest = tmp_path / "tool.installed"
    dest.write_text("#!/bin/sh\n")
    os.chmod(dest, 0o644)
    inode = os.stat(dest).st_ino

    result = run_fleet(
        fleet.targets()[:1], CopyCall(src=str(src), dest=str(dest), mode="0755"), options, pool=pool
    )

    assert [r.status for r in result.values()] == [HostStatus.CHANGED]
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o755
    assert os.stat(dest).st_ino == inode  # not rewritten


def test_fetch_refuses_files_over_the_cap(fleet, options, pool, tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    big.write_bytes(b"x" * 10_000)
    local = tmp_path / "fetched"
    call = FetchCall(src=str(big), dest=str(local), max_bytes=1000)

    result = run_fleet(fleet.targets()[:2], call, options, pool=pool)

    for host_result in result.values():
        assert host_result.status is HostStatus.FAILED
        assert "10000 bytes, over max_bytes 1000" in (host_result.error or "")
    assert not local.exists() or not any(p.is_file() for p in local.rglob("*"))


def test_fetch_again_reports_unchanged(fleet, options, pool, tmp_path: Path) -> None:
    src = tmp_path / "state.json"
    src.write_text('{"ok": true}\n')
    call = FetchCall(src=str(src), dest=str(tmp_path / "fetched"), max_bytes=1000)
    targets = fleet.targets()[:2]

    first = run_fleet(targets, call, options, pool=pool)
    second = run_fleet(targets, call, options, pool=pool)

    assert {r.status for r in first.values()} == {HostStatus.CHANGED}
    assert {r.status for r in second.values()} == {HostStatus.OK}


def _tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_a_directory_is_copied_file_by_file_and_a_second_copy_changes_nothing(
    fleet, options, pool, tmp_path: Path
) -> None:
    src = tmp_path / "site"
    (src / "conf.d").mkdir(parents=True)
    (src / "index.html").write_text("<h1>hi</h1>\n")
    (src / "conf.d" / "app.conf").write_text("port = 80\n")
    dest = tmp_path / "srv"
    targets = fleet.targets()[:1]
    host = targets[0].name

    contents = run_fleet(targets, CopyCall(src=f"{src}/", dest=str(dest)), options, pool=pool)
    again = run_fleet(targets, CopyCall(src=f"{src}/", dest=str(dest)), options, pool=pool)
    itself = run_fleet(targets, CopyCall(src=str(src), dest=str(dest)), options, pool=pool)

    assert contents[host].changed and contents[host].data["files"] == 2
    assert _tree(dest / "conf.d") == {"app.conf": "port = 80\n"}
    assert (dest / "index.html").read_text() == "<h1>hi</h1>\n"
    assert (again[host].status, again[host].changed) == (HostStatus.OK, False)
    assert itself[host].data["dest"] == str(dest / "site")
    assert _tree(dest / "site") == _tree(src)


def test_a_directory_with_a_link_leading_out_of_it_is_refused(
    fleet, options, pool, tmp_path: Path
) -> None:
    src = tmp_path / "bundle"
    src.mkdir()
    (src / "ok.txt").write_text("fine\n")
    (src / "secret").symlink_to("/etc/hostname")
    targets = fleet.targets()[:1]

    result = run_fleet(
        targets, CopyCall(src=str(src), dest=str(tmp_path / "out")), options, pool=pool
    )

    assert result[targets[0].name].status is HostStatus.FAILED
    assert "links outside" in (result[targets[0].name].error or "")
    assert not (tmp_path / "out" / "bundle" / "ok.txt").exists()
