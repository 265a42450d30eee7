"""A ``vm.provision`` that names no hypervisor, through the API: placement chooses among the
test-driver hypervisors from what the job declares it needs (here: the pool holding its base
image), and the job's result says where the VM landed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.provision.conftest import BASE, NODE_XML, POOL


def node(tmp_path: Path, name: str, base: str) -> str:
    """A test-driver hypervisor whose pool holds the volume ``base``."""
    text = NODE_XML.format(subnet="127.98.0", pool=POOL, base=base, base_size=2**30, iso="x.iso")
    path = tmp_path / f"{name}.xml"
    path.write_text(text)
    return f"test://{path}"


@pytest.mark.parametrize("holder", ["hv-a", "hv-b"])
def test_a_vm_without_a_named_hypervisor_lands_where_its_base_image_is(
    make_stack: Any, tmp_path: Path, holder: str
) -> None:
    hypervisors = {
        name: node(tmp_path, name, BASE if name == holder else "other.qcow2")
        for name in ("hv-a", "hv-b")
    }
    stack = make_stack(hypervisors, pool_roots=[Path(f"/{POOL}")])
    params = {"name": "placed1", "memory_mib": 256, "disk": {"base_image": f"{POOL}/{BASE}"}}

    done = stack.run("vm.provision", None, **params)

    assert done["state"] == "succeeded", done["error"]
    assert done["hypervisor"] == holder
    assert done["result"]["hypervisor"] == holder
    assert done["result"]["state"] == "running"
