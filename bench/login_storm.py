"""Login storm: GetMe latency while 50 clients log in at once with bcrypt at its production cost (12).

    python -m bench.login_storm [--quick] [--seconds N] [--storm N]

`python -m auth_server` runs in its own process on a fresh SQLite database. First GetMe latency is measured
alone (the baseline), then again while `--storm` callers (default 50) send Login back to back on another
connection. Target (issue 6): GetMe p99 under 50 ms during the storm, i.e. bcrypt never blocks the loop
nor starves the calls that need no hashing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.report import Row
from bench.target import free_port
from bench.unary_stack import Load, markdown_table, server_process
from mediadl.auth.v1 import auth_pb2, auth_pb2_grpc

PASSWORD = "storm password 1"
TARGET_P99_MS = 50.0


async def measure_get_me(stub: auth_pb2_grpc.AuthServiceStub, token: str, seconds: float) -> Load:
    """One caller, a GetMe every 10 ms (not back to back: a probe, not a load of its own)."""
    md = (("authorization", f"Bearer {token}"),)
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        sent = time.perf_counter()
        try:
            await stub.GetMe(auth_pb2.GetMeRequest(), metadata=md, timeout=30)
            latencies.append((time.perf_counter() - sent) * 1000)
        except grpc.aio.AioRpcError:
            errors += 1
        await asyncio.sleep(max(0.0, 0.01 - (time.perf_counter() - sent)))
    return Load(len(latencies), errors, time.perf_counter() - started, latencies)


async def storm(port: int, callers: int, stop: asyncio.Event, emails: list[str]) -> Load:
    latencies: list[float] = []
    errors = 0
    # A connection of its own, so the probe's calls do not queue behind the storm's in one HTTP/2 connection.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)  # type: ignore[no-untyped-call]

        async def caller(i: int) -> None:
            nonlocal errors
            request = auth_pb2.LoginRequest(email=emails[i], password=PASSWORD)
            while not stop.is_set():
                sent = time.perf_counter()
                try:
                    await stub.Login(request, timeout=120)
                    latencies.append((time.perf_counter() - sent) * 1000)
                except grpc.aio.AioRpcError:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(caller(i) for i in range(callers)))
        return Load(len(latencies), errors, time.perf_counter() - started, latencies)


async def drive(port: int, callers: int, seconds: float) -> tuple[Load, Load, Load]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
        # One account per caller: a storm of many users (one account's parallel logins would be throttled).
        emails = [f"storm{i}-{secrets.token_hex(4)}@example.com" for i in range(callers)]
        await asyncio.gather(
            *(
                stub.Register(
                    auth_pb2.RegisterRequest(email=e, username=e.split("@")[0], password=PASSWORD), timeout=600
                )
                for e in emails
            )
        )
        token = (await stub.Login(auth_pb2.LoginRequest(email=emails[0], password=PASSWORD))).access_token
        for _ in range(20):
            await stub.GetMe(auth_pb2.GetMeRequest(), metadata=(("authorization", f"Bearer {token}"),))
        baseline = await measure_get_me(stub, token, seconds)
        stop = asyncio.Event()
        storm_task = asyncio.create_task(storm(port, callers, stop, emails))
        await asyncio.sleep(min(1.0, seconds / 4))  # let every storm caller get a Login in flight
        during = await measure_get_me(stub, token, seconds)
        stop.set()
        logins = await storm_task
        return baseline, during, logins


@dataclass(frozen=True)
class Storm:
    callers: int
    rounds: str
    baseline: Load
    during: Load
    logins: Load


def measure(callers: int, seconds: float, rounds: str, hash_workers: int | None = None) -> Storm:
    with tempfile.TemporaryDirectory(prefix="bench-login-") as tmp:
        port = free_port()
        env = {
            "JWT_SECRET_KEY": secrets.token_urlsafe(48),
            "AUTH_GRPC_ADDR": f"127.0.0.1:{port}",
            "AUTH_DATABASE_URL": f"sqlite:///{Path(tmp) / 'auth.db'}",
            "AUTH_BCRYPT_ROUNDS": rounds,
            # The storm is many users, simulated from one address: the per-client Register throttle and
            # hashing lanes (bench/register_flood.py measures those) would otherwise refuse most of it.
            "AUTH_REGISTER_MAX_PER_CLIENT": "0",
            "AUTH_LOGIN_PEER_MAX_FAILURES": "0",
            "AUTH_HASH_PER_CLIENT": "64",
            "AUTH_HASH_CLIENT_QUEUE": "1000",
            "AUTH_HASH_QUEUE_LIMIT": "1000",
        }
        if hash_workers:
            env["AUTH_HASH_WORKERS"] = str(hash_workers)
        with server_process(["-m", "auth_server"], env, port, Path(tmp) / "auth.log"):
            baseline, during, logins = asyncio.run(drive(port, callers, seconds))
    return Storm(callers, rounds, baseline, during, logins)


def report(storm: Storm) -> str:
    baseline, during, logins = storm.baseline, storm.during, storm.logins
    rows = [
        [
            "GetMe alone (baseline)",
            baseline.calls,
            f"{baseline.p50:.2f}",
            f"{baseline.p99:.2f}",
            "1.00",
            baseline.errors,
        ],
        [
            f"GetMe during {storm.callers} Logins",
            during.calls,
            f"{during.p50:.2f}",
            f"{during.p99:.2f}",
            f"{during.p99 / baseline.p99:.2f}" if baseline.p99 else "-",
            during.errors,
        ],
        [
            f"Login (storm, {logins.rps:.1f}/s)",
            logins.calls,
            f"{logins.p50:.0f}",
            f"{logins.p99:.0f}",
            "-",
            logins.errors,
        ],
    ]
    verdict = "met" if during.latencies_ms and during.p99 < TARGET_P99_MS else "NOT met"
    return "\n".join(
        [
            markdown_table(["calls", "count", "p50 ms", "p99 ms", "p99 x baseline", "errors"], rows),
            "",
            f"- GetMe p99 during the storm: {during.p99:.1f} ms (target < {TARGET_P99_MS:.0f} ms: {verdict})",
        ]
    )


def summary_rows(storm: Storm) -> list[Row]:
    during, baseline = storm.during, storm.baseline
    return [
        Row(
            f"GetMe p99 during {storm.callers} Logins at bcrypt cost {storm.rounds} (bench/login_storm.py)",
            f"{during.p99:.1f} ms (alone {baseline.p99:.1f} ms; {storm.logins.rps:.1f} logins/s)",
            f"< {TARGET_P99_MS:.0f} ms",
            bool(during.latencies_ms) and during.p99 < TARGET_P99_MS,
        )
    ]


def bench_rows(say: Callable[[str], None], *, quick: bool = False, seconds: float = 10.0) -> list[Row]:
    """For bench.run_all: measure, tell `say` the detailed table, return the summary rows."""
    storm = measure(5, 1.0, "4") if quick else measure(50, seconds, "12")
    for line in report(storm).splitlines():
        say(line)
    return summary_rows(storm)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tiny run (seconds), for smoke tests")
    parser.add_argument("--seconds", type=float, default=10.0, help="GetMe measuring time, each phase (default 10)")
    parser.add_argument("--storm", type=int, default=50, help="concurrent Login callers (default 50)")
    parser.add_argument("--hash-workers", type=int, help="AUTH_HASH_WORKERS for the server (default: its own)")
    args = parser.parse_args(argv)
    seconds, callers, rounds = (1.0, 5, "4") if args.quick else (args.seconds, args.storm, "12")
    print(
        f"login storm: {callers} Login callers, bcrypt cost {rounds}, {seconds:g} s per phase, {os.cpu_count()} CPU(s)"
    )
    storm = measure(callers, seconds, rounds, args.hash_workers)
    print()
    print(report(storm))
    return 0


if __name__ == "__main__":
    sys.exit(main())
