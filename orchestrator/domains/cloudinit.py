"""The files of a cloud-init NoCloud seed (``user-data``, ``meta-data``, ``network-config``).

Building the ISO is the job's work; this only decides what goes in it. YAML is written by
``yaml.safe_dump`` so no user value is formatted into the documents by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import yaml

from orchestrator.domains.spec import DomainSpec

# The volume label cloud-init's NoCloud datasource looks for.
SEED_VOLUME_LABEL = "cidata"


def nocloud_files(spec: DomainSpec) -> dict[str, str]:
    """File name -> contents for the seed of ``spec`` (empty when it has no cloud_init).

    Without user_data, a ``#cloud-config`` that installs ``ssh_authorized_keys`` for the image's
    default user is written. Without meta_data, the instance id is the domain's UUID (or name)
    and the hostname its name, so a redefined domain is seen as a new instance.
    """
    ci = spec.cloud_init
    if ci is None:
        return {}
    files = {"meta-data": ci.meta_data if ci.meta_data is not None else _meta_data(spec)}
    if ci.user_data is not None:
        files["user-data"] = ci.user_data
    else:
        config = (
            {"ssh_authorized_keys": list(ci.ssh_authorized_keys)} if ci.ssh_authorized_keys else {}
        )
        files["user-data"] = "#cloud-config\n" + (_yaml(config) if config else "")
    if ci.network_config is not None:
        files["network-config"] = ci.network_config
    return files


def _meta_data(spec: DomainSpec) -> str:
    return meta_data(str(spec.uuid) if spec.uuid else spec.name, spec.name)


def meta_data(instance_id: str, hostname: str) -> str:
    """The ``meta-data`` document: the instance id cloud-init keys its first boot on, and the
    guest's hostname."""
    return _yaml({"instance-id": instance_id, "local-hostname": hostname})


def user_cloud_config(user: str, keys: Sequence[str], password_hash: str | None) -> str:
    """A ``#cloud-config`` adding ``user`` beside the image's default user, with passwordless
    sudo, ``keys`` to log in with and, when given, a hashed password (never a plain one: the
    seed ISO is a file anyone with the pool's directory can read)."""
    entry: dict[str, object] = {
        "name": user,
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
        "shell": "/bin/bash",
    }
    if keys:
        entry["ssh_authorized_keys"] = list(keys)
    if password_hash is not None:
        entry["lock_passwd"] = False
        entry["passwd"] = password_hash
    config: dict[str, object] = {"users": ["default", entry]}
    if password_hash is not None:
        config["ssh_pwauth"] = True
    return "#cloud-config\n" + _yaml(config)


def _yaml(data: Mapping[str, object]) -> str:
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)
