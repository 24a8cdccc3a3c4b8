"""Register flood: legitimate Login latency while one client floods Register at bcrypt's production cost (12).

    python -m bench.register_flood [--quick] [--seconds N] [--flood N] [--unbounded]

`python -m auth_server` runs in its own process on a fresh SQLite database, trusting 127.0.0.1 as a proxy so
each simulated client names its own address in `x-forwarded-for` (as the dashboard does). Five legitimate
users log in one after another, each from its own address, while `--flood` callers (default 40) send
Register back to back from one address. `--unbounded` turns the Register throttle and the hashing lanes
off (the behaviour before issue 16: every Register queued a bcrypt hash). Target (issue 16): legitimate
Login p99 under 1 s during the flood, on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.target import free_port
from bench.unary_stack import Load, server_process
from mediadl.auth.v1 import auth_pb2, auth_pb2_grpc

PASSWORD = "flood password 1"
TARGET_P99_MS = 1000.0
LEGIT_USERS = 5
UNBOUNDED = {
    "AUTH_REGISTER_MAX_PER_CLIENT": "0",
    "AUTH_HASH_PER_CLIENT": "1000",
    "AUTH_HASH_CLIENT_QUEUE": "1000",
    "AUTH_HASH_QUEUE_LIMIT": "1000",
}


def _from(address: str) -> tuple[tuple[str, str]]:
    return (("x-forwarded-for", address),)


async def flood(stub: auth_pb2_grpc.AuthServiceStub, callers: int, stop: asyncio.Event, backoff: float) -> Load:
    refused = 0
    accepted = 0

    async def caller() -> None:
        nonlocal refused, accepted
        while not stop.is_set():
            name = f"f{secrets.token_hex(6)}"
            request = auth_pb2.RegisterRequest(email=f"{name}@example.com", username=name, password=PASSWORD)
            try:
                await stub.Register(request, metadata=_from("203.0.113.66"), timeout=120)
                accepted += 1
            except grpc.aio.AioRpcError:
                refused += 1
                await asyncio.sleep(backoff)  # a hostile flood ignores RetryInfo: it only pauses this long

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return Load(accepted, refused, time.perf_counter() - started, [])


async def legitimate(stub: auth_pb2_grpc.AuthServiceStub, emails: list[str], seconds: float) -> Load:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    while time.perf_counter() < stop_at:
        for i, email in enumerate(emails):
            sent = time.perf_counter()
            try:
                request = auth_pb2.LoginRequest(email=email, password=PASSWORD)
                await stub.Login(request, metadata=_from(f"198.51.100.{i + 1}"), timeout=120)
                latencies.append((time.perf_counter() - sent) * 1000)
            except grpc.aio.AioRpcError:
                errors += 1
    return Load(len(latencies), errors, seconds, latencies)


async def drive(port: int, callers: int, seconds: float, backoff: float) -> tuple[Load, Load, Load]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
        emails = []
        for i in range(LEGIT_USERS):
            name = f"legit{i}_{secrets.token_hex(3)}"
            await stub.Register(
                auth_pb2.RegisterRequest(email=f"{name}@example.com", username=name, password=PASSWORD),
                metadata=_from(f"198.51.100.{i + 1}"),
            )
            emails.append(f"{name}@example.com")
        alone = await legitimate(stub, emails, seconds)
        stop = asyncio.Event()
        # Its own connection, as a flooding client would have.
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
        ) as flood_channel:
            flood_task = asyncio.create_task(
                flood(auth_pb2_grpc.AuthServiceStub(flood_channel), callers, stop, backoff)
            )  # type: ignore[no-untyped-call]
            await asyncio.sleep(1.0)  # the flood is in full swing
            during = await legitimate(stub, emails, seconds)
            stop.set()
            flooded = await flood_task
        return alone, during, flooded


@dataclass(frozen=True)
class Result:
    alone: Load
    during: Load
    flood: Load


def measure(callers: int, seconds: float, rounds: str, unbounded: bool, backoff: float = 0.25) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        port = free_port()
        env = {
            "JWT_SECRET_KEY": secrets.token_urlsafe(48),
            "AUTH_GRPC_ADDR": f"127.0.0.1:{port}",
            "AUTH_DATABASE_URL": f"sqlite:///{Path(tmp) / 'auth.db'}",
            "AUTH_BCRYPT_ROUNDS": rounds,
            "AUTH_TRUSTED_PROXIES": "127.0.0.1/32",
            **(UNBOUNDED if unbounded else {}),
        }
        with server_process(["-m", "auth_server"], env, port, Path(tmp) / "auth.log"):
            return Result(*asyncio.run(drive(port, callers, seconds, backoff)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tiny run (bcrypt cost 4), for smoke tests")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per phase (default 10)")
    parser.add_argument("--flood", type=int, default=40, help="concurrent Register callers (default 40)")
    parser.add_argument("--unbounded", action="store_true", help="no Register throttle, no hashing lanes")
    parser.add_argument(
        "--backoff", type=float, default=0.25, help="seconds a flood caller pauses after a refusal (default 0.25)"
    )
    args = parser.parse_args(argv)
    seconds, rounds = (1.0, "4") if args.quick else (args.seconds, "12")
    mode = "unbounded (before issue 16)" if args.unbounded else "default settings"
    print(f"register flood: {args.flood} Register callers, bcrypt cost {rounds}, {mode}, {os.cpu_count()} CPU(s)")
    result = measure(args.flood, seconds, rounds, args.unbounded, args.backoff)
    for label, load in (("Login alone", result.alone), ("Login during the flood", result.during)):
        print(f"{label}: {load.calls} logins, p50 {load.p50:.0f} ms, p99 {load.p99:.0f} ms, {load.errors} errors")
    print(f"flood: {result.flood.calls} Registers accepted, {result.flood.errors} refused")
    met = result.during.latencies_ms and result.during.p99 < TARGET_P99_MS and not result.during.errors
    print(f"legitimate Login p99 during the flood < {TARGET_P99_MS:.0f} ms: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
