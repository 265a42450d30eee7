"""Disks on the hypervisor through libvirt's storage API: pools, volumes, uploads, qemu-img."""
