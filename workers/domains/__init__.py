"""Domains on the hypervisor through libvirt: define from a spec, power actions, describe."""
