"""The files of a cloud-init NoCloud seed (``user-data``, ``meta-data``, ``network-config``).

Building the ISO is the job's work; this only decides what goes in it. YAML is written by
``yaml.safe_dump`` so no user value is formatted into the documents by hand.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    instance_id = str(spec.uuid) if spec.uuid else spec.name
    return _yaml({"instance-id": instance_id, "local-hostname": spec.name})


def _yaml(data: Mapping[str, object]) -> str:
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)
