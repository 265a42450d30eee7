"""Pure rules for disks: size strings, volume and pool names, paths inside pools, spec comparison.

Nothing here talks to libvirt; the worker side (``workers.storage``) applies these rules.
"""
