"""Runs Ansible-style ad-hoc modules (ping, command, shell, script, copy, fetch) on a fleet of
hosts over SSH with paramiko, keeping connections warm between jobs. Independent of Celery.

The calls, options, targets and results it works with are pure models of the core
(:mod:`orchestrator.fleet`); this package holds only what talks SSH.
"""
