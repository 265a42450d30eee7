"""The fault suite: jobs run while a fault hits the stack, then every job is checked for a final
state with its reason, and libvirt, SQL, Redis and the API for agreement (``make chaos``)."""
