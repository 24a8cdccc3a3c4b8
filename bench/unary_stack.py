"""Unary cost of the stack: authenticated GetTask against a no-op RPC without and with the auth interceptor.

    python -m bench.unary_stack [--quick] [--seconds N]

Three servers, each a process of its own, driven by this process at 1, 16 and 128 concurrent callers:
  noop       start_server() with a no-op RPC: the request log and stream limit only (the bare stack)
  noop+auth  the same no-op RPC behind ErrorBoundaryInterceptor + AuthInterceptor, as both servers run it
  GetTask    `python -m download_server` on a fresh SQLite database: token check, SQL read, conversion
Targets (issue 6): noop+auth >= 85% of noop throughput; GetTask >= 50% of noop throughput.
The clients run in this one Python process, so on a small machine the client side caps the figures too;
every row shares that cap, which is why the ratios are the result. Also the helpers the other benchmarks use.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.report import Row
from bench.target import free_port

if TYPE_CHECKING:
    from mediadl.download.v1 import download_pb2

ROOT = Path(__file__).resolve().parent.parent
PROBE_SERVICE = "bench.v1.Probe"
NOOP = f"/{PROBE_SERVICE}/Noop"


# --- helpers shared by the benchmarks -------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class ServerProcess:
    pid: int
    port: int
    log: Path


@contextmanager
def server_process(
    args: Sequence[str], env: dict[str, str], port: int, log: Path, *, health: bool = True
) -> Iterator[ServerProcess]:
    """Run `python <args>` with `env` on top of ours, logs to `log`; stopped with SIGTERM at the end.

    Ready when its gRPC health check says SERVING (or, with health=False, when the port accepts connections).
    """
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_serving(proc, port, log, health)
        yield ServerProcess(proc.pid, port, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def probe_process(
    port: int, secret: str, log: Path, *, with_auth: bool, metrics_addr: str = ""
) -> AbstractContextManager[ServerProcess]:
    """The probe server (a no-op RPC, with or without the auth interceptor checking tokens signed with
    `secret`) as a process of its own; with `metrics_addr`, its /metrics counts the calls by grpc-status."""
    args = ["-m", "bench.unary_stack", "--serve-probe", str(port), "--auth" if with_auth else "--no-auth"]
    env = {"BENCH_SECRET": secret, **({"BENCH_METRICS_ADDR": metrics_addr} if metrics_addr else {})}
    return server_process(args, env, port, log)


def bench_task_request(title: str) -> download_pb2.CreateTaskRequest:
    """The MP4 task the GetTask benchmarks read. Its URLs are on loopback (the servers allow private networks):
    CreateTask checks them without DNS, which this machine may lack; GetTask never fetches them."""
    from mediadl.download.v1 import download_pb2 as pb

    return pb.CreateTaskRequest(
        video_id=str(uuid.uuid4()),
        liveroom_id="bench",
        liveroom_title=title,
        liveroom_url="http://127.0.0.1:9/live",
        resource_url="http://127.0.0.1:9/bench.mp4",
        resource_type=pb.RESOURCE_TYPE_MP4,
    )


def _wait_serving(proc: subprocess.Popen[bytes], port: int, log: Path, health: bool, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}; see {log}:\n{log.read_text()[-2000:]}")
            try:
                if not health:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except (grpc.RpcError, OSError):
                time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not serving after {timeout:.0f} s; see {log}")


@dataclass(frozen=True)
class Load:
    calls: int
    errors: int  # failed calls, and replies that decoded to something else than asked for
    seconds: float
    latencies_ms: list[float]
    replies: list[Any] = field(default_factory=list, repr=False)  # kept only when asked (to check them after)

    @property
    def rps(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 99)


def sound(*loads: Load) -> bool:
    """A figure counts only if every call of its loads succeeded with the right reply (and there were calls)."""
    return all(load.calls > 0 and load.errors == 0 for load in loads)


async def run_load(
    call: Callable[[], Awaitable[Any]], concurrency: int, seconds: float, *, keep_replies: bool = False
) -> Load:
    """`concurrency` callers call back to back for `seconds` (after a short warm-up); latency of each call.
    With keep_replies, the replies are kept for the caller to check after the timed part."""
    for _ in range(min(20, concurrency * 2)):
        await call()
    latencies: list[float] = []
    replies: list[Any] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                reply = await call()
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            if keep_replies:
                replies.append(reply)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return Load(len(latencies), errors, time.perf_counter() - started, latencies, replies)


# --- the probe server (a child process) -----------------------------------------------------------------


async def _serve_probe(port: int, with_auth: bool, secret: str) -> None:
    from mediadl_common.auth_interceptor import AuthInterceptor
    from mediadl_common.config import Env, JwtSettings
    from mediadl_common.interceptors import ErrorBoundaryInterceptor
    from mediadl_common.log import LogSettings, configure_logging
    from mediadl_common.server import serve_until_signalled, start_server
    from mediadl_common.tokens import TokenVerifier

    configure_logging(LogSettings(level="INFO"))

    async def noop(_request: bytes, _ctx: Any) -> bytes:
        return b""

    def register(server: grpc.aio.Server) -> Sequence[str]:
        handler = grpc.unary_unary_rpc_method_handler(noop, lambda b: b, lambda b: b)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(PROBE_SERVICE, {"Noop": handler}),))
        return [PROBE_SERVICE]

    interceptors: list[grpc.aio.ServerInterceptor] = []
    if with_auth:
        verifier = TokenVerifier(JwtSettings.from_env(Env({"JWT_SECRET_KEY": secret})))
        interceptors = [ErrorBoundaryInterceptor(), AuthInterceptor.for_services(verifier, [PROBE_SERVICE])]
    # BENCH_METRICS_ADDR: bench/h2load_unary counts the probe's calls by grpc-status from its /metrics.
    metrics_addr = os.environ.get("BENCH_METRICS_ADDR") or None
    running = await start_server(f"127.0.0.1:{port}", register, interceptors, metrics_addr=metrics_addr)
    await serve_until_signalled(running, grace=0)


# --- the benchmark --------------------------------------------------------------------------------------


def token_for(secret: str, user_id: str) -> str:
    from auth_server.adapters.tokens import JwtIssuer
    from mediadl_common.config import Env, JwtSettings

    issuer = JwtIssuer(JwtSettings.from_env(Env({"JWT_SECRET_KEY": secret})))
    return issuer.issue(sub=user_id, type="access", ttl_seconds=3600)[0]


@asynccontextmanager
async def channel_to(port: int) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel


async def measure_noop(port: int, md: tuple[tuple[str, str], ...], levels: Sequence[int], seconds: float) -> list[Load]:
    async with channel_to(port) as channel:
        noop = channel.unary_unary(NOOP)
        if md:  # the interceptor must be checking tokens, or its cost is measured on nothing
            await refuses_bad_tokens(noop, md)
        return [await run_load(lambda: noop(b"", metadata=md), level, seconds) for level in levels]


async def refuses_bad_tokens(noop: Any, good: tuple[tuple[str, str], ...]) -> None:
    """Raise unless the server answers a good token and refuses a missing, a malformed and a forged one."""
    await noop(b"", metadata=good)
    forged = token_for(secrets.token_urlsafe(48), str(uuid.uuid4()))
    for bad in ((), (("authorization", "Bearer not.a.token"),), (("authorization", f"Bearer {forged}"),)):
        try:
            await noop(b"", metadata=bad)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                continue
        raise RuntimeError(f"the auth interceptor let a call through with metadata {bad!r}: its cost means nothing")


def checked(load: Load, right: Callable[[Any], bool]) -> Load:
    """`load` with each reply that is not `right` counted as an error (replies are dropped after)."""
    wrong = sum(1 for reply in load.replies if not right(reply))
    return replace(load, calls=load.calls - wrong, errors=load.errors + wrong, replies=[])


async def measure_get_task(port: int, token: str, levels: Sequence[int], seconds: float) -> list[Load]:
    from mediadl.download.v1 import download_pb2 as pb

    md = (("authorization", f"Bearer {token}"),)
    async with channel_to(port) as channel:
        create = channel.unary_unary(
            "/mediadl.download.v1.DownloadService/CreateTask",
            request_serializer=pb.CreateTaskRequest.SerializeToString,
            response_deserializer=pb.CreateTaskResponse.FromString,
        )
        task = (await create(bench_task_request("unary benchmark"), metadata=md)).task
        # Serialised once, replies kept as bytes and decoded after the timed part: the client's protobuf work
        # stays out of the comparison, yet every reply must be the task asked for.
        request = pb.GetTaskRequest(task_id=task.id).SerializeToString()
        get = channel.unary_unary("/mediadl.download.v1.DownloadService/GetTask")

        def right(reply: bytes) -> bool:
            got = pb.GetTaskResponse.FromString(reply).task
            return bool(got.id == task.id and got.user_id == task.user_id and got.video_id == task.video_id)

        loads = [
            await run_load(lambda: get(request, metadata=md), level, seconds, keep_replies=True) for level in levels
        ]
        return [checked(load, right) for load in loads]


def run(levels: Sequence[int], seconds: float) -> tuple[dict[str, list[Load]], str]:
    secret = secrets.token_urlsafe(48)
    user = str(uuid.uuid4())
    token = token_for(secret, user)
    results: dict[str, list[Load]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-unary-") as tmp:
        folder = Path(tmp)
        for name, with_auth in (("noop", False), ("noop+auth", True)):
            port = free_port()
            with probe_process(port, secret, folder / f"{name}.log", with_auth=with_auth):
                md = (("authorization", f"Bearer {token}"),) if with_auth else ()
                results[name] = asyncio.run(measure_noop(port, md, levels, seconds))
        port = free_port()
        env = {
            "JWT_SECRET_KEY": secret,
            "DOWNLOAD_GRPC_ADDR": f"127.0.0.1:{port}",
            "DOWNLOAD_DATABASE_URL": f"sqlite:///{folder / 'download.db'}",
            "STORAGE_DIR": str(folder / "storage"),
            "DOWNLOAD_ALLOW_PRIVATE_NETWORKS": "true",
        }
        with server_process(["-m", "download_server"], env, port, folder / "download.log"):
            results["GetTask"] = asyncio.run(measure_get_task(port, token, levels, seconds))
    return results, report(results, levels)


def summary_rows(results: dict[str, list[Load]], levels: Sequence[int]) -> list[Row]:
    """Rows for bench.run_all's table: the two targets at each concurrency level."""
    rows = []
    for level, noop, auth, get in zip(levels, results["noop"], results["noop+auth"], results["GetTask"], strict=True):
        cost = 1 - auth.rps / noop.rps if noop.rps else 1.0
        share = get.rps / noop.rps if noop.rps else 0.0
        rows.append(
            Row(
                f"Auth interceptor cost, {level} caller(s) (bench/unary_stack.py)",
                f"{cost:.0%} of no-op throughput ({noop.rps:,.0f} -> {auth.rps:,.0f} calls/s)",
                "<= 15%",
                cost <= 0.15 and sound(noop, auth),
            )
        )
        rows.append(
            Row(
                f"GetTask vs no-op throughput, {level} caller(s) (bench/unary_stack.py)",
                f"{share:.2f} ({get.rps:,.0f} calls/s, p50 {get.p50:.1f} ms, p99 {get.p99:.1f} ms)",
                ">= 0.50",
                share >= 0.5 and sound(noop, get),
            )
        )
    return rows


def report(results: dict[str, list[Load]], levels: Sequence[int]) -> str:
    rows = []
    for name, loads in results.items():
        for level, load, base in zip(levels, loads, results["noop"], strict=True):
            rows.append(
                [
                    name,
                    level,
                    f"{load.rps:,.0f}",
                    f"{load.p50:.2f}",
                    f"{load.p99:.2f}",
                    f"{load.rps / base.rps:.2f}" if base.rps else "-",
                    load.errors,
                ]
            )
    table = markdown_table(["RPC", "callers", "calls/s", "p50 ms", "p99 ms", "x noop calls/s", "errors"], rows)
    verdicts = []
    for level, noop, auth, get in zip(levels, results["noop"], results["noop+auth"], results["GetTask"], strict=True):
        cost = 1 - auth.rps / noop.rps if noop.rps else 0.0
        share = get.rps / noop.rps if noop.rps else 0.0
        verdicts.append(
            f"- {level} caller(s): interceptor costs {cost:.0%} of no-op throughput (target <= 15%: "
            f"{_verdict(cost <= 0.15, noop, auth)}); GetTask reaches {share:.0%} of it (target >= 50%: "
            f"{_verdict(share >= 0.5, noop, get)})"
        )
    return table + "\n\n" + "\n".join(verdicts)


def _verdict(figure_met: bool, *loads: Load) -> str:
    if not sound(*loads):
        failed = sum(load.errors for load in loads)
        return f"NOT met: {failed} failed or wrong call(s)" if failed else "NOT met: no calls"
    return "met" if figure_met else "NOT met"


def bench_rows(say: Callable[[str], None], *, quick: bool = False, seconds: float = 5.0) -> list[Row]:
    """For bench.run_all: measure, tell `say` the detailed table, return the summary rows."""
    levels, seconds = ((1, 16), 0.3) if quick else ((1, 16, 128), seconds)
    results, text = run(levels, seconds)
    for line in text.splitlines():
        say(line)
    return summary_rows(results, levels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tiny run (seconds), for smoke tests")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per row (default 5)")
    parser.add_argument("--serve-probe", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--auth", action=argparse.BooleanOptionalAction, default=False, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_probe is not None:
        asyncio.run(_serve_probe(args.serve_probe, args.auth, os.environ["BENCH_SECRET"]))
        return 0
    levels, seconds = ((1, 16), 0.3) if args.quick else ((1, 16, 128), args.seconds)
    print(f"unary stack: {len(levels)} concurrency levels x {seconds:g} s per RPC kind, {os.cpu_count()} CPU(s)")
    _, table = run(levels, seconds)
    print()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
