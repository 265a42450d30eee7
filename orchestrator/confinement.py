"""Where a job may reach on a hypervisor, whose worker runs as root: the path rules, pure.

Every host path a job names must lie inside directories the operator allowed, after symlinks
are resolved, and never in a system directory, whatever the settings say:

- pools are made or adopted inside the pool roots (``pool_roots`` and ``var_dir/pools``); a pool
  whose directory lies there is *managed*, and only managed pools' volumes are created, resized,
  cloned, uploaded, deleted or attached to a domain; an image's backing chain stays in them;
- files a domain only reads (kernel, initrd, display password file) lie in a managed pool or
  the read roots (``read_roots`` and ``var_dir/images``);
- files a domain writes (a serial log) lie in ``var_dir/consoles`` or the pool roots, and are
  never an existing volume: a console must not overwrite a disk;
- nothing lies in the orchestrator's own ``var_dir`` (its database, keys and spooled uploads)
  except those three subdirectories.

The caller resolves symlinks on the hypervisor's filesystem (the API may run elsewhere, so it
checks only what needs no filesystem: :func:`refuse_system_path`). A refusal is
:class:`~orchestrator.errors.Forbidden` (403) naming the field, the rule and the setting.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestrator.errors import Forbidden
from orchestrator.settings import Settings

# Neither these directories nor anything under them.
SYSTEM_TREES = (
    "/etc",
    "/root",
    "/boot",
    "/usr",
    "/bin",
    "/sbin",
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/var/run",
    "/var/lock",
    "/var/log",
    "/var/spool",
    "/var/mail",
    "/var/backups",
    "/var/cache/libvirt",
    "/var/lib/dpkg",
    "/var/lib/apt",
    "/var/lib/systemd",
    "/var/lib/libvirt/qemu",
    "/var/lib/libvirt/swtpm",
    "/var/lib/libvirt/dnsmasq",
    "/var/lib/libvirt/secrets",
)
# These directories themselves (a pool there would own every file directly in them), though
# directories below them may be allowed: /var/lib/libvirt/images, /srv/vms, /tmp/ci-pool.
SYSTEM_PARENTS = (
    "/",
    "/var",
    "/var/lib",
    "/var/lib/libvirt",
    "/var/cache",
    "/home",
    "/srv",
    "/opt",
    "/mnt",
    "/media",
    "/tmp",
    "/var/tmp",
)
# Credentials live here, wherever the home directory is.
CREDENTIAL_DIRS = frozenset({".ssh", ".gnupg"})
# Subdirectories of var_dir a job may reach; the rest of var_dir never.
VAR_DIR_OPEN = ("pools", "images", "consoles")


def is_within(path: str, root: str, *, allow_equal: bool = False) -> bool:
    """Whether normalized absolute ``path`` is ``root`` (when allowed) or lies below it."""
    if path == root:
        return allow_equal
    return path.startswith(root.rstrip("/") + "/")


def system_directory(path: str) -> str | None:
    """The system directory that ``path`` (absolute, normalized) is or lies in, else None."""
    parts = path.split("/")
    top = parts[1] if len(parts) > 1 else ""
    if top.startswith("lib"):  # /lib, /lib32, /lib64, /libx32
        return f"/{top}"
    for tree in SYSTEM_TREES:
        if is_within(path, tree, allow_equal=True):
            return tree
    if path in SYSTEM_PARENTS:
        return path
    credentials = next((part for part in parts if part in CREDENTIAL_DIRS), None)
    if credentials is not None:
        return path[: path.index(f"/{credentials}") + len(credentials) + 1]
    return None


def shown(given: str, resolved: str) -> str:
    """How a message names a path: as given, and where it leads when a symlink moved it."""
    return given if given == resolved else f"{given} (resolving to {resolved})"


def refuse_system_path(field: str, given: str, resolved: str | None = None) -> None:
    """Forbidden when the path (``resolved``, when the caller could resolve it) is a system
    directory or lies in one. Needs no filesystem, so the API checks it too."""
    path = os.path.normpath(resolved or given)
    system = system_directory(path)
    if system is None:
        return
    where = "a system directory" if system == path else f"inside {system}, a system directory"
    raise Forbidden.of(
        field,
        f"{shown(given, path)} is {where}, never allowed",
        rule="system-directory",
    )


@dataclass(frozen=True)
class Roots:
    """Directories some access may reach, and the settings that name them."""

    paths: tuple[str, ...]
    what: str  # "the pool roots"
    setting: str  # "ORCH_POOL_ROOTS"
    rule: str  # "pool-roots"

    def contain(self, path: str, *, allow_equal: bool = False) -> bool:
        return any(is_within(path, root, allow_equal=allow_equal) for root in self.paths)

    def describe(self) -> str:
        return f"{self.what} ({self.setting}: {', '.join(self.paths) or 'none'})"


@dataclass(frozen=True)
class Confinement:
    """The path rules of one hypervisor's worker, from its settings (roots resolved)."""

    pool_roots: Roots
    read_roots: Roots
    console_roots: Roots
    var_dir: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Confinement:
        pools = tuple(str(path) for path in settings.allowed_pool_roots)
        reads = tuple(str(path) for path in settings.allowed_read_roots)
        consoles = str(settings.var_dir.resolve() / "consoles")
        return cls(
            pool_roots=Roots(pools, "the pool roots", "ORCH_POOL_ROOTS", "pool-roots"),
            read_roots=Roots(
                reads, "the read roots and managed pools", "ORCH_READ_ROOTS", "read-roots"
            ),
            console_roots=Roots(
                (consoles, *pools),
                "where consoles may be written",
                "var_dir/consoles and ORCH_POOL_ROOTS",
                "console-roots",
            ),
            var_dir=str(settings.var_dir.resolve()),
        )

    def forbidden(self, field: str, given: str, resolved: str) -> Forbidden | None:
        """The refusal when ``resolved`` is a system directory or the orchestrator's own state."""
        try:
            refuse_system_path(field, given, resolved)
        except Forbidden as exc:
            return exc
        open_dirs = [os.path.join(self.var_dir, name) for name in VAR_DIR_OPEN]
        if not is_within(resolved, self.var_dir, allow_equal=True) or any(
            is_within(resolved, open_dir, allow_equal=True) for open_dir in open_dirs
        ):
            return None
        return Forbidden.of(
            field,
            f"{shown(given, resolved)} is inside the orchestrator's var_dir {self.var_dir} (its "
            f"database, keys and uploads), never allowed; only its {', '.join(VAR_DIR_OPEN)} "
            "subdirectories are",
            rule="var-dir",
            setting="ORCH_VAR_DIR",
        )

    def refuse_forbidden(self, field: str, given: str, resolved: str) -> None:
        refusal = self.forbidden(field, given, resolved)
        if refusal is not None:
            raise refusal

    def is_pool_dir(self, resolved: str) -> bool:
        """Whether a pool at ``resolved`` is managed: inside (or at) a pool root, not forbidden."""
        if self.forbidden("", resolved, resolved) is not None:
            return False
        return self.pool_roots.contain(resolved, allow_equal=True)

    def check_pool_dir(self, field: str, given: str, resolved: str) -> None:
        """A pool may be made at ``given`` (resolving to ``resolved``); Forbidden otherwise."""
        self.refuse_forbidden(field, given, resolved)
        if not self.pool_roots.contain(resolved, allow_equal=True):
            raise self.outside(field, given, resolved, self.pool_roots)

    def check_read(
        self, field: str, given: str, resolved: str, managed_dirs: Iterable[str]
    ) -> None:
        """A domain may read the file ``given``: in a managed pool or the read roots."""
        self.refuse_forbidden(field, given, resolved)
        roots = Roots(
            (*self.read_roots.paths, *sorted(set(managed_dirs))),
            self.read_roots.what,
            self.read_roots.setting,
            self.read_roots.rule,
        )
        if not roots.contain(resolved):
            raise self.outside(field, given, resolved, self.read_roots)

    def check_console(self, field: str, given: str, resolved: str) -> None:
        """A domain may write its console to ``given``: in var_dir/consoles or the pool roots."""
        self.refuse_forbidden(field, given, resolved)
        if not self.console_roots.contain(resolved):
            raise self.outside(field, given, resolved, self.console_roots)

    def check_in_pools(
        self,
        field: str,
        given: str,
        resolved: str,
        managed_dirs: Mapping[str, str],
        subject: str = "",
    ) -> None:
        """A disk, volume or backing file must lie in a managed pool's directory; ``subject``
        (as in "/pool/a.qcow2 refers to the backing file ") starts the refusal's message."""
        if any(is_within(resolved, directory) for directory in managed_dirs.values()):
            return  # managed pools are never in a system directory or var_dir's own state
        if not subject:
            self.refuse_forbidden(field, given, resolved)
        listed = ", ".join(f"{name}: {path}" for name, path in sorted(managed_dirs.items()))
        raise Forbidden.of(
            field,
            f"{subject}{shown(given, resolved)} is outside the managed pools "
            f"({listed or 'none'}), the pools whose directory lies in "
            f"{self.pool_roots.describe()}",
            rule="managed-pool",
            setting=self.pool_roots.setting,
        )

    def unmanaged_pool(self, field: str, pool: str, directory: str | None) -> Forbidden:
        """The refusal to touch the volumes of a pool whose directory is outside the roots."""
        where = f"at {directory}" if directory else "without a directory"
        return Forbidden.of(
            field,
            f"storage pool {pool!r} {where} is not a managed pool: only pools whose directory "
            f"lies in {self.pool_roots.describe()} are",
            rule="managed-pool",
            setting=self.pool_roots.setting,
        )

    @staticmethod
    def outside(field: str, given: str, resolved: str, roots: Roots) -> Forbidden:
        return Forbidden.of(
            field,
            f"{shown(given, resolved)} is outside {roots.describe()}",
            rule=roots.rule,
            setting=roots.setting,
        )
