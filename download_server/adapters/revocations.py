"""Revocations from the auth server: polls ListRevocations with AUTH_SERVICE_TOKEN into the verifier's list.

Never per request: the verifier checks its in-memory list, and this poller keeps it fresh every few seconds.
An auth server outage never blocks anything here: the last list stays in force, one WARNING says so when the
outage starts (one INFO when it ends), and `mediadl_download_revocations_age_seconds` shows how stale it is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge

from mediadl.auth.v1 import auth_pb2, auth_pb2_grpc
from mediadl_common.revocations import RevocationList

log = logging.getLogger(__name__)
# Ask again for a little of the past: another auth replica's commit may land just after our last answer.
OVERLAP = timedelta(seconds=5)
CALL_TIMEOUT_SECONDS = 5.0


class RevocationPoller:
    """One ListRevocations call per `interval` on a channel from `connect`; `poll_once` is what tests drive.

    After a failed call the channel is closed and the next poll opens a new one: `connect` reads the TLS files
    again, so a rotated client certificate or CA is picked up exactly when the old one stops working.
    """

    def __init__(
        self,
        connect: Callable[[], grpc.aio.Channel],
        service_token: str,
        revocations: RevocationList,
        registry: CollectorRegistry,
        *,
        interval: float,
    ) -> None:
        self._connect = connect
        self._channel: grpc.aio.Channel | None = None
        self._metadata = (("authorization", f"Bearer {service_token}"),)
        self._revocations = revocations
        self._interval = interval
        self._since: datetime | None = None
        self._failing = False
        self._failures = Counter(
            "mediadl_download_revocation_poll_failures",
            "ListRevocations polls that failed (the last list stays in force)",
            registry=registry,
        )
        age = Gauge(
            "mediadl_download_revocations_age_seconds",
            "Seconds since the auth server last answered ListRevocations (-1: never yet)",
            registry=registry,
        )
        age.set_function(self.age_seconds)
        size = Gauge("mediadl_download_revocations", "Revoked users held in memory", registry=registry)
        size.set_function(lambda: len(self._revocations))

    def age_seconds(self) -> float:
        last = self._revocations.last_update
        return -1.0 if last is None else max(0.0, time.time() - last)

    async def poll_once(self) -> bool:
        """One call; True if the auth server answered. Never raises for a failed call."""
        request = auth_pb2.ListRevocationsRequest()
        if self._since is not None:
            request.since_time.FromDatetime(self._since)
        if self._channel is None:
            self._channel = self._connect()
        stub = auth_pb2_grpc.AuthServiceStub(self._channel)  # type: ignore[no-untyped-call]
        try:
            reply = await stub.ListRevocations(request, metadata=self._metadata, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            self._failed(exc)
            await self.close()
            return False
        self._revocations.merge(
            (r.user_id, r.revoke_time.ToDatetime(tzinfo=UTC).timestamp()) for r in reply.revocations
        )
        self._since = reply.server_time.ToDatetime(tzinfo=UTC) - OVERLAP
        if self._failing:
            log.info("revocations: the auth server answers again (%d revoked user(s) held)", len(self._revocations))
        self._failing = False
        return True

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self._interval)

    def _failed(self, exc: grpc.aio.AioRpcError) -> None:
        self._failures.inc()
        if self._failing:
            return
        self._failing = True
        # PERMISSION_DENIED is a configuration mistake (AUTH_SERVICE_TOKEN differs), not an outage: say which.
        log.warning(
            "revocations: ListRevocations failed (%s: %s); keeping the last list of %d revoked user(s), %s",
            exc.code().name,
            exc.details(),
            len(self._revocations),
            "never loaded yet" if self._revocations.last_update is None else f"{self.age_seconds():.0f} s old",
        )


async def start_revocation_poll(poller: RevocationPoller) -> Callable[[], Awaitable[None]]:
    """Poll in the background from now on; returns the coroutine function that stops it and closes its channel.

    The first poll runs in the task too: a server starting while the auth server is down starts anyway.
    """
    task = asyncio.create_task(poller.run(), name="revocation-poll")

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await poller.close()

    return stop
