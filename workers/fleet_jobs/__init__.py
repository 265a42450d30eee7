"""The worker side of the ``fleet.run`` and ``fleet.ping`` jobs: load the inventory the job
names, turn the selected hosts into targets, run the executor, stream its output as events."""

from workers.fleet_jobs.job import run_fleet_job

__all__ = ["run_fleet_job"]
