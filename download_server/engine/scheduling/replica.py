"""Who this replica is and how long its leases last."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class ReplicaSettings:
    replica_id: str
    lease_seconds: float = 15.0
    # How often a replica looks for runnable tasks without being nudged (a dead replica's lapsed leases
    # announce nothing, so this bounds how late its tasks are picked up after the lease).
    claim_interval: float = 2.0


def default_replica_id() -> str:
    """hostname-pid-random: unique per process, readable in logs and in tasks.lease_owner."""
    return f"{socket.gethostname()[:80]}-{os.getpid()}-{secrets.token_hex(3)}"
