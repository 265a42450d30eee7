"""Helpers the test fixtures share: real services started on free ports and stopped by PID."""
