"""What to run on every host: one validated call of a module (ping, command, shell, script,
copy, fetch), as a pydantic discriminated union a job's parameters can embed."""

from __future__ import annotations

import posixpath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

_USER_NAME = r"^[a-z_][a-z0-9_-]{0,31}\$?$"


class _Call(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _absolute_remote_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path")
    if "\x00" in value or "\n" in value:
        raise ValueError("must not contain NUL or newline characters")
    if ".." in value.split("/"):
        raise ValueError("must not contain '..' components")
    return posixpath.normpath(value)


class PingCall(_Call):
    """Connect and authenticate; answers ``pong``."""

    module: Literal["ping"] = "ping"


class CommandCall(_Call):
    """Run a program with arguments, without a shell: each argument is quoted for the remote
    shell that OpenSSH hands the command string to."""

    module: Literal["command"] = "command"
    argv: list[Annotated[str, Field(max_length=65536)]] = Field(min_length=1, max_length=4096)
    chdir: str | None = Field(None, description="Remote directory to run in.")

    @field_validator("argv")
    @classmethod
    def _no_nul(cls, argv: list[str]) -> list[str]:
        if any("\x00" in arg for arg in argv):
            raise ValueError("arguments must not contain NUL characters")
        if not argv[0]:
            raise ValueError("the program name (argv[0]) must not be empty")
        return argv

    @field_validator("chdir")
    @classmethod
    def _chdir_absolute(cls, chdir: str | None) -> str | None:
        return None if chdir is None else _absolute_remote_path(chdir)


class ShellCall(_Call):
    """Run a command line with ``/bin/sh -c`` (pipes, redirections and variables work)."""

    module: Literal["shell"] = "shell"
    cmd: str = Field(min_length=1, max_length=131072)

    @field_validator("cmd")
    @classmethod
    def _no_nul(cls, cmd: str) -> str:
        if "\x00" in cmd:
            raise ValueError("must not contain NUL characters")
        return cmd


class ScriptCall(_Call):
    """Upload a local script to a temporary remote file, run it with ``args``, then remove it."""

    module: Literal["script"] = "script"
    path: str = Field(
        min_length=1, description="The script on the worker, relative to fleet-files/files/."
    )
    args: list[str] = Field(default_factory=list, max_length=4096)


class CopyCall(_Call):
    """Put a local file at ``dest``; unchanged content, mode and owner report ``changed: false``.
    A directory is copied file by file: ``src/`` puts its contents into ``dest``, ``src`` the
    directory itself (as Ansible does)."""

    module: Literal["copy"] = "copy"
    src: str = Field(
        min_length=1,
        description="The file or directory on the worker, relative to fleet-files/files/.",
    )
    dest: str = Field(description="Absolute remote path of the file (or directory).")
    mode: str | None = Field(None, pattern=r"^0?[0-7]{3,4}$", description="Octal, e.g. 0644.")
    owner: str | None = Field(None, pattern=_USER_NAME)
    group: str | None = Field(None, pattern=_USER_NAME)

    @field_validator("dest")
    @classmethod
    def _dest_is_a_file_path(cls, dest: str) -> str:
        if dest.rstrip("/") == "":
            raise ValueError("must name a file, not '/'")
        return _absolute_remote_path(dest)


class FetchCall(_Call):
    """Bring ``src`` back to ``dest/<host name>/<src>`` on the worker, refusing files over
    ``max_bytes``. In a job, ``dest`` lies in the job's own fetch area,
    ``fleet-files/fetched/<job id>/``."""

    module: Literal["fetch"] = "fetch"
    src: str = Field(description="Absolute remote path of the file.")
    dest: str = Field(
        ".",
        min_length=1,
        description="Local directory on the worker; in a job, relative to the job's "
        "fleet-files/fetched/<job id>/.",
    )
    max_bytes: int = Field(64 * 1024 * 1024, ge=1, le=8 * 1024**3)

    @field_validator("src")
    @classmethod
    def _src_absolute(cls, src: str) -> str:
        return _absolute_remote_path(src)


ModuleCall = Annotated[
    PingCall | CommandCall | ShellCall | ScriptCall | CopyCall | FetchCall,
    Field(discriminator="module"),
]

_ADAPTER: TypeAdapter[Any] = TypeAdapter(ModuleCall)


AnyCall = PingCall | CommandCall | ShellCall | ScriptCall | CopyCall | FetchCall


def parse_module_call(raw: Any) -> AnyCall:
    """Validate a ``{"module": ..., ...}`` mapping into its call model (pydantic errors name
    the field and rule)."""
    return _ADAPTER.validate_python(raw)
