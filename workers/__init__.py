"""Celery tasks and the hypervisor-side code they call (libvirt, SSH). Workers never touch SQL."""
