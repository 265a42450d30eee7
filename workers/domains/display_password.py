"""The display (VNC/SPICE) password of a domain being defined, read on this hypervisor.

A job names only the file (``graphics.password_file``): the password never travels through the
job queue, SQL or events. It is read when the domain is planned, before anything is created, and
goes only into the XML handed to libvirt. A domain that already exists is compared by the file's
path, not its content: changing the file does not redefine the domain.
"""

from __future__ import annotations

import dataclasses

from pydantic import SecretStr

from orchestrator.domains.devices import GraphicsSpec, check_graphics_password
from orchestrator.domains.domxml import ResolvedSpec
from orchestrator.errors import InvalidInput

FIELD = "params.graphics.password_file"
# Far above any display password; stops a wrong path (a disk image, a device) from being read.
MAX_PASSWORD_CHARS = 1024


def read_display_password(graphics: GraphicsSpec) -> SecretStr | None:
    """The password ``graphics`` asks for: the file's text less one trailing newline.

    InvalidInput naming ``params.graphics.password_file`` when the file cannot be read or its
    content is no valid password; the messages never quote the content.
    """
    if graphics.password_file is None:
        return graphics.password
    path = graphics.password_file
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            text = handle.read(MAX_PASSWORD_CHARS + 2)
    except OSError as exc:
        raise _invalid(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise _invalid(f"{path} is not UTF-8 text") from None
    secret = text[:-1] if text.endswith("\n") else text
    if len(secret) > MAX_PASSWORD_CHARS:
        raise _invalid(f"{path} holds more than {MAX_PASSWORD_CHARS} characters")
    try:
        check_graphics_password(graphics.type, secret)
    except ValueError as exc:
        raise _invalid(f"{path}: {exc}") from None
    return SecretStr(secret)


def with_display_password(resolved: ResolvedSpec, password: SecretStr | None) -> ResolvedSpec:
    """``resolved`` whose display has ``password`` (unchanged without a display or password)."""
    if resolved.graphics is None or password is None:
        return resolved
    graphics = dataclasses.replace(resolved.graphics, password=password)
    return dataclasses.replace(resolved, graphics=graphics)


def _invalid(reason: str) -> InvalidInput:
    message = f"graphics password file: {reason}"
    return InvalidInput(message, errors=[{"field": FIELD, "message": message}])
