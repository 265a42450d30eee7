"""Labels on a hypervisor (``rack``, ``zone``, anything): short printable keys and values that
placement requests match exactly."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

LabelKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$")]
LabelValue = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_./:-]{0,255}$")]
Labels = Annotated[dict[LabelKey, LabelValue], Field(max_length=64)]
