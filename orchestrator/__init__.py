"""Core of the KVM orchestrator: settings, job model, lifecycle, Celery factory, recorder, CLI.

Importable without Flask or a hypervisor.
"""
