"""Runs Ansible-style ad-hoc modules (ping, command, shell, script, copy, fetch) on a fleet of
hosts over SSH with paramiko, keeping connections warm between jobs. Independent of Celery."""

from workers.fleet.calls import (
    AnyCall,
    CommandCall,
    CopyCall,
    FetchCall,
    ModuleCall,
    PingCall,
    ScriptCall,
    ShellCall,
    parse_module_call,
)
from workers.fleet.connections import ConnectionPool, PoolStats, default_pool
from workers.fleet.executor import OutputCallback, run_fleet
from workers.fleet.options import FleetOptions, plan_batches
from workers.fleet.results import FleetResult, HostResult, HostStatus, RecapCounts
from workers.fleet.target import HostTarget

__all__ = [
    "AnyCall",
    "CommandCall",
    "ConnectionPool",
    "CopyCall",
    "FetchCall",
    "FleetOptions",
    "FleetResult",
    "HostResult",
    "HostStatus",
    "HostTarget",
    "ModuleCall",
    "OutputCallback",
    "PingCall",
    "PoolStats",
    "RecapCounts",
    "ScriptCall",
    "ShellCall",
    "default_pool",
    "parse_module_call",
    "plan_batches",
    "run_fleet",
]
