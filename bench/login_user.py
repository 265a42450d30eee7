"""A throwaway unprivileged login user for the fleet benchmark, so that a measured login does not
pay for root's shell setup. Created with ``useradd`` and removed, with its processes, on exit."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Written into the GECOS field of users throwaway_user creates, so a leftover from an
# interrupted run is recognised as ours and never confused with a real account.
_THROWAWAY_MARK = "fleet sshd hosts throwaway user"


@dataclass(frozen=True)
class LoginUser:
    """An unprivileged account the sshd hosts accept with one public key."""

    name: str
    uid: int
    home: Path


@contextlib.contextmanager
def throwaway_user(name: str, public_key: str) -> Iterator[LoginUser]:
    """Create system user ``name`` (shell /bin/sh, home a fresh temp dir holding
    ``.ssh/authorized_keys`` with ``public_key``) and remove it, its processes and its home
    on exit, also on exceptions and Ctrl-C. A leftover of an interrupted run is replaced; an
    account of that name that is not ours is never touched (RuntimeError)."""
    _remove_leftover(name)
    home = Path(tempfile.mkdtemp(prefix=f"fleet-{name}-"))
    try:
        options = ["--system", "--no-create-home", "--home-dir", str(home), "--shell", "/bin/sh"]
        # "*": no password can match, yet the account is not locked ("!"), which sshd
        # without PAM would refuse even for key logins.
        subprocess.run(
            ["useradd", *options, "--password", "*", "--comment", _THROWAWAY_MARK, name],
            check=True,
            capture_output=True,
        )
        try:
            user = LoginUser(name, pwd.getpwnam(name).pw_uid, home)
            _install_key(user, public_key)
            yield user
        finally:
            _remove_user(name)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _install_key(user: LoginUser, public_key: str) -> None:
    """The modes and owners sshd's StrictModes asks for: home and .ssh 0700, file 0600."""
    gid = pwd.getpwnam(user.name).pw_gid
    ssh_dir = user.home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(public_key.strip() + "\n")
    keys.chmod(0o600)
    for path in (user.home, ssh_dir, keys):
        os.chown(path, user.uid, gid)
    user.home.chmod(0o700)


def _remove_leftover(name: str) -> None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return
    if entry.pw_gecos != _THROWAWAY_MARK:
        raise RuntimeError(f"user {name} exists and was not created by throwaway_user")
    _remove_user(name)
    home = Path(entry.pw_dir)
    # Only a home this module made (a temp dir named for the user) is deleted with it.
    if home.parent == Path(tempfile.gettempdir()) and home.name.startswith(f"fleet-{name}-"):
        shutil.rmtree(home, ignore_errors=True)


def _remove_user(name: str) -> None:
    """Stop the user's processes (sshd sessions that outlived their listener) by PID, then
    delete the account and its group."""
    uid = pwd.getpwnam(name).pw_uid
    for attempt in range(20):
        for pid in _pids_of(uid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL if attempt else signal.SIGTERM)
        gone = subprocess.run(["userdel", name], capture_output=True, text=True, check=False)
        if gone.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"could not remove user {name}: {gone.stderr.strip()}")


def _pids_of(uid: int) -> list[int]:
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if proc.stat().st_uid == uid:
                pids.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return pids
