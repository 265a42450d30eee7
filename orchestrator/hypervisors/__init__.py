"""The hypervisors the orchestrator places work on: the registry in SQL fed by heartbeats, the
atomic claims in Redis that keep concurrent placements from overcommitting one, and the
placement of a job that names no hypervisor.

Import the modules themselves: the registry loads SQL, which the workers never do."""
