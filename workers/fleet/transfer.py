"""The modules that move files: ``copy`` (SFTP up, skipped when the checksum, mode and owner
already match, renamed into place atomically; a directory file by file) and ``fetch`` (a
capped copy back to the worker, under a directory per host as Ansible does; a host whose
name cannot be a directory of its own, such as ``group_vars``, is refused)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import posixpath
import secrets
import shlex
import stat
import tempfile
from dataclasses import dataclass

import paramiko

from orchestrator.fleet.calls import CopyCall, FetchCall
from orchestrator.fleet.files import check_path_component
from workers.fleet.connections import Connection
from workers.fleet.errors import ModuleFailed
from workers.fleet.modules import ModuleContext, ModuleOutcome, execute, open_sftp
from workers.fleet.remote_command import CommandOutcome


@dataclass(frozen=True)
class RemoteFile:
    checksum: str
    mode: int
    owner: str
    group: str


def copy(conn: Connection, call: CopyCall, ctx: ModuleContext) -> ModuleOutcome:
    if os.path.isdir(call.src):
        return _copy_tree(conn, call, ctx)
    if not os.path.isfile(call.src):
        raise ModuleFailed(f"copy source {call.src} is not a file or directory on this worker")
    return _copy_file(conn, call, ctx)


def _copy_tree(conn: Connection, call: CopyCall, ctx: ModuleContext) -> ModuleOutcome:
    """A directory, as Ansible copies one: ``src/`` puts its contents into ``dest``, ``src``
    the directory itself. Each file goes as a single copy does (skipped when it matches)."""
    root = os.path.realpath(call.src)
    top = call.dest if call.src.endswith("/") else posixpath.join(call.dest, os.path.basename(root))
    directories, files = _tree(root, top)
    made = _run_or_fail(conn, _mkdir_line(directories), ctx, "create directories")
    changed = [
        remote
        for local, remote in files
        if _copy_file(conn, call.model_copy(update={"src": local, "dest": remote}), ctx).changed
    ]
    data = {"dest": top, "files": len(files), "changed_files": changed}
    return ModuleOutcome(failed=False, changed=bool(changed or made.strip()), data=data)


def _tree(root: str, top: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The remote directories and (local file, remote file) pairs of the tree at ``root``.

    Symlinks are followed only to files inside the tree: one leading elsewhere would copy a
    worker file the job was never allowed to name."""
    directories, files = [top], []
    for current, subdirs, names in os.walk(root):
        relative = os.path.relpath(current, root)
        remote = top if relative == "." else posixpath.join(top, *relative.split(os.sep))
        for name in sorted(subdirs):
            if os.path.islink(os.path.join(current, name)):
                raise ModuleFailed(f"{os.path.join(current, name)} is a link to a directory")
            directories.append(posixpath.join(remote, name))
        for name in sorted(names):
            local = os.path.join(current, name)
            if not os.path.realpath(local).startswith(root + os.sep):
                raise ModuleFailed(f"{local} links outside {root}; copy does not follow it")
            if not os.path.isfile(local):
                raise ModuleFailed(f"{local} is not a regular file")
            files.append((local, posixpath.join(remote, name)))
    return directories, files


def _mkdir_line(directories: list[str]) -> str:
    # -v names each directory it had to create: none means nothing changed.
    return "mkdir -pv -- " + " ".join(shlex.quote(d) for d in directories)


def _copy_file(conn: Connection, call: CopyCall, ctx: ModuleContext) -> ModuleOutcome:
    checksum = local_sha256(call.src)
    current = _stat_remote(conn, call.dest, ctx, os.path.getsize(call.src))
    mode = int(call.mode, 8) if call.mode else (current.mode if current else 0o644)
    data = {"dest": call.dest, "checksum": checksum, "mode": f"{mode:04o}"}
    if current is not None and current.checksum == checksum:
        if _attributes_match(current, call, mode):
            return ModuleOutcome(failed=False, changed=False, data=data)
        _run_or_fail(conn, _attribute_commands(call.dest, call, mode), ctx, "set mode/owner")
        return ModuleOutcome(failed=False, changed=True, data=data)
    _upload(conn, call, mode, ctx)
    return ModuleOutcome(failed=False, changed=True, data=data)


def fetch(conn: Connection, call: FetchCall, ctx: ModuleContext) -> ModuleOutcome:
    try:
        host_dir = check_path_component(ctx.target.name)
    except ValueError as exc:
        raise ModuleFailed(f"fetch cannot make a directory for this host: {exc}") from None
    local_path = os.path.join(call.dest, host_dir, call.src.lstrip("/"))
    size, checksum = _size_and_checksum(conn, call.src, ctx)
    data = {"src": call.src, "dest": local_path, "checksum": checksum, "size": size}
    if size > call.max_bytes:
        raise ModuleFailed(f"{call.src} is {size} bytes, over max_bytes {call.max_bytes}")
    if os.path.isfile(local_path) and local_sha256(local_path) == checksum:
        return ModuleOutcome(failed=False, changed=False, data=data)
    _receive(conn, call, ctx, local_path, checksum)
    return ModuleOutcome(failed=False, changed=True, data=data)


def _receive(
    conn: Connection, call: FetchCall, ctx: ModuleContext, local_path: str, checksum: str
) -> None:
    """Stream the file into a temporary file beside ``local_path``, check it, rename it."""
    os.makedirs(os.path.dirname(local_path), exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=os.path.dirname(local_path), prefix=".fetch-")
    try:
        with os.fdopen(fd, "wb") as handle:
            line = f"cat -- {shlex.quote(call.src)}"
            outcome = execute(conn, line, ctx, cap=call.max_bytes, on_line=None, stdout_sink=handle)
        _check_fetched(outcome, call, partial, checksum)
        os.replace(partial, local_path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def local_sha256(path: str) -> str:
    """The file's sha256, computed once per file version (a copy to 100 hosts hashes once)."""
    info = os.stat(path)
    return _sha256(path, info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _stat_remote(
    conn: Connection, dest: str, ctx: ModuleContext, local_size: int
) -> RemoteFile | None:
    """Checksum, mode and owner of ``dest``, or None when it does not exist (or is unreadable).
    Without become an SFTP stat answers first: a missing file or another size needs no
    checksum, which saves starting a remote shell."""
    if not ctx.target.become:
        sftp = open_sftp(conn, ctx)
        try:
            attrs = sftp.stat(dest)
        except OSError:
            return None
        finally:
            sftp.close()
        if attrs.st_size != local_size:
            return RemoteFile("", stat.S_IMODE(attrs.st_mode or 0), "", "")
    quoted = shlex.quote(dest)
    line = f"sha256sum -- {quoted} && stat -c '%a %U %G' -- {quoted}"
    outcome = execute(conn, line, ctx, on_line=None)
    if outcome.rc != 0:
        return None
    lines = outcome.text("stdout").splitlines()
    try:
        mode, owner, group = lines[-1].split()
        return RemoteFile(lines[0].split()[0], int(mode, 8), owner, group)
    except (IndexError, ValueError):
        return None


def _attributes_match(current: RemoteFile, call: CopyCall, mode: int) -> bool:
    return (
        current.mode == mode
        and (call.owner is None or current.owner == call.owner)
        and (call.group is None or current.group == call.group)
    )


def _attribute_commands(path: str, call: CopyCall, mode: int) -> str:
    quoted = shlex.quote(path)
    commands = [f"chmod {mode:04o} -- {quoted}"]
    if call.owner or call.group:
        spec = (call.owner or "") + (f":{call.group}" if call.group else "")
        commands.append(f"chown {shlex.quote(spec)} -- {quoted}")
    return " && ".join(commands)


def _upload(conn: Connection, call: CopyCall, mode: int, ctx: ModuleContext) -> None:
    """Write beside ``dest`` under a temporary name, set mode and owner, then rename: readers
    see the old file or the new one, never half of it. With become, the login user uploads
    to remote_tmp and the become user moves the file into place."""
    token = secrets.token_hex(8)
    beside = posixpath.join(
        posixpath.dirname(call.dest), f".{posixpath.basename(call.dest)}.fleet-{token}.tmp"
    )
    staged = (
        posixpath.join(ctx.options.remote_tmp, f".fleet-copy-{token}")
        if ctx.target.become
        else beside
    )
    sftp = open_sftp(conn, ctx)
    try:
        with open(call.src, "rb") as local:
            sftp.putfo(local, staged, file_size=os.path.getsize(call.src), confirm=True)
        if not ctx.target.become and not (call.owner or call.group):
            _install_by_sftp(sftp, beside, call.dest, mode)
            return
    except OSError as exc:
        raise ModuleFailed(f"upload to {staged} failed: {exc}") from None
    finally:
        sftp.close()
    steps = [
        _attribute_commands(beside, call, mode),
        f"mv -f -- {shlex.quote(beside)} {shlex.quote(call.dest)}",
    ]
    if staged != beside:
        steps.insert(0, f"cp -- {shlex.quote(staged)} {shlex.quote(beside)}")
    script = " && ".join(steps)
    cleanup = f"rm -f -- {shlex.quote(beside)}"
    if staged != beside:
        # The staged file belongs to the login user; remove it whatever the become step did.
        script = f"{script}; rc=$?; {cleanup}; exit $rc"
    else:
        script = f"{script} || {{ rc=$?; {cleanup}; exit $rc; }}"
    try:
        _run_or_fail(conn, script, ctx, f"install {call.dest}")
    finally:
        if staged != beside:
            execute(conn, f"rm -f -- {shlex.quote(staged)}", ctx, on_line=None)


def _install_by_sftp(sftp: paramiko.SFTPClient, beside: str, dest: str, mode: int) -> None:
    """chmod and rename over SFTP (OpenSSH's posix-rename replaces ``dest`` atomically)."""
    try:
        sftp.chmod(beside, mode)
        sftp.posix_rename(beside, dest)
    except OSError:
        with contextlib.suppress(OSError):
            sftp.remove(beside)
        raise


def _run_or_fail(conn: Connection, line: str, ctx: ModuleContext, what: str) -> str:
    """Run ``line``; its stdout, or ModuleFailed with its stderr."""
    outcome = execute(conn, line, ctx, on_line=None)
    if outcome.rc != 0:
        reason = outcome.text("stderr").strip() or f"return code {outcome.rc}"
        raise ModuleFailed(f"could not {what}: {reason}")
    return outcome.text("stdout")


def _size_and_checksum(conn: Connection, src: str, ctx: ModuleContext) -> tuple[int, str]:
    quoted = shlex.quote(src)
    outcome = execute(conn, f"stat -c %s -- {quoted} && sha256sum -- {quoted}", ctx, on_line=None)
    lines = outcome.text("stdout").split()
    if outcome.rc != 0 or len(lines) < 2:
        reason = outcome.text("stderr").strip() or f"return code {outcome.rc}"
        raise ModuleFailed(f"cannot read {src}: {reason}")
    return int(lines[0]), lines[1]


def _check_fetched(outcome: CommandOutcome, call: FetchCall, path: str, checksum: str) -> None:
    if outcome.timed_out or outcome.rc != 0:
        reason = outcome.text("stderr").strip() or f"return code {outcome.rc}"
        raise ModuleFailed(f"reading {call.src} failed: {reason}")
    if outcome.stdout_truncated:
        raise ModuleFailed(f"{call.src} grew past max_bytes {call.max_bytes} while fetching")
    if local_sha256(path) != checksum:
        raise ModuleFailed(f"{call.src} changed while it was fetched; try again")
