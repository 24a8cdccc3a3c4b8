"""Unary capacity with a C load generator: nghttp2's `h2load` against the servers as `make run` starts them.

    python -m bench.h2load_unary [--seconds N] [--rounds N] [--streams 64 128] [--quick]

The client is C, so unlike bench/unary_stack.py it takes little CPU from the servers and its own limits do
not flatten the figures. Each server is a process of its own on a fresh SQLite database (migrated first):
  auth      `python -m auth_server` (health Check and GetMe for a registered, logged-in user)
  download  `python -m download_server` next to it (health Check and GetTask of that user's task), with the
            auth server's address and service token, as `make run` wires them
  probe     bench/unary_stack's no-op RPC without and with ErrorBoundaryInterceptor + AuthInterceptor: the
            interceptor's cost is the share of no-op calls/s it takes away
h2load sends gRPC frames (the 5-byte prefix + the serialized request) with `content-type: application/grpc`,
`te: trailers` and the bearer token, over 4 connections with 16 or 32 streams each (64 / 128 concurrent).

h2load counts HTTP 200s, but a gRPC error is a 200 too, with grpc-status in the trailers. So calls are counted
from each server's own Prometheus counter (mediadl_rpc_requests by method and code, scraped before and after):
only code OK counts. The run checks this on itself first: a GetTask with a forged token is a 200 to h2load and
not OK to the counter (the row says so). Targets (issue 17): GetTask and GetMe >= 0.5 of the no-op health
Check's calls/s, the interceptor <= 10%. Each row also gives the server's and h2load's CPU per call.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.fanout import cpu_seconds
from bench.report import Row
from bench.target import free_port
from bench.unary_stack import NOOP, bench_task_request, markdown_table, probe_process, server_process, token_for

HEALTH = "/grpc.health.v1.Health/Check"
GET_ME = "/mediadl.auth.v1.AuthService/GetMe"
GET_TASK = "/mediadl.download.v1.DownloadService/GetTask"
CONNECTIONS = 4
READ_TARGET = 0.5
INTERCEPTOR_TARGET = 0.10


def frame(message: bytes) -> bytes:
    """One gRPC length-prefixed message: not compressed (0), big-endian length, the bytes."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def h2load_command() -> str | None:
    """The h2load binary; installs Debian's nghttp2-client when it is missing and we may (root, apt-get)."""
    found = shutil.which("h2load")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*args: str) -> int:
        done = subprocess.run(["apt-get", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return done.returncode

    if apt("install", "-y", "nghttp2-client") != 0:  # the package lists may be missing or stale
        apt("update")
        apt("install", "-y", "nghttp2-client")
    return shutil.which("h2load")


@dataclass(frozen=True)
class Target:
    """Where a load goes: the server's gRPC port, its metrics port and process id."""

    name: str
    port: int
    metrics_port: int
    pid: int


@dataclass(frozen=True)
class Shot:
    """One h2load run: calls that ended with grpc-status OK, how long, what h2load saw, CPU seconds."""

    label: str
    streams: int
    ok_calls: int
    http_2xx: int
    seconds: float
    server_cpu: float
    client_cpu: float

    @property
    def rps(self) -> float:
        return self.ok_calls / self.seconds if self.seconds else 0.0


def ok_count(metrics_port: int, method: str) -> tuple[int, int]:
    """(calls with code OK, calls with any other code) of `method`, from the server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    ok = other = 0
    for labels, value in re.findall(r"^mediadl_rpc_requests_total\{(.*)\} (\S+)$", text, flags=re.MULTILINE):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if found.get("method") != method:
            continue
        if found.get("code") == "OK":
            ok += int(float(value))
        else:
            other += int(float(value))
    return ok, other


def run_h2load(
    h2load: str, target: Target, method: str, body: Path, token: str | None, streams: int, seconds: float
) -> Shot:
    """h2load for `seconds` (after a one-second warm-up) at `streams` concurrent streams over 4 connections."""
    command = [
        h2load,
        f"-c{CONNECTIONS}",
        f"-m{streams // CONNECTIONS}",
        f"-D{seconds:g}",
        "--warm-up-time=1",
        f"-d{body}",
        "-Hcontent-type: application/grpc",
        "-Hte: trailers",
        *([f"-Hauthorization: Bearer {token}"] if token else []),
        f"http://127.0.0.1:{target.port}{method}",
    ]
    before = ok_count(target.metrics_port, method)
    cpu_before = cpu_seconds(target.pid)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    output = proc.stdout.read().decode() if proc.stdout else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    server_cpu = cpu_seconds(target.pid) - cpu_before
    if proc.returncode != 0:
        raise RuntimeError(f"h2load failed ({proc.returncode}):\n{output[-2000:]}")
    after = ok_count(target.metrics_port, method)
    elapsed = float(_field(r"finished in ([\d.]+)(m?s)", output, scaled=True))
    http_2xx = int(_field(r"status codes: (\d+) 2xx", output))
    # The counter also holds the warm-up's calls, which h2load leaves out of its figures: every call it saw
    # counts as OK only if the server counted that many OK calls and no other code meanwhile.
    ok_delta, other_delta = after[0] - before[0], after[1] - before[1]
    ok_calls = max(0, min(http_2xx, ok_delta) - other_delta)
    return Shot(target.name, streams, ok_calls, http_2xx, elapsed, server_cpu, usage.ru_utime + usage.ru_stime)


def _field(pattern: str, output: str, *, scaled: bool = False) -> float:
    found = re.search(pattern, output)
    if found is None:
        raise RuntimeError(f"h2load output lacks {pattern!r}:\n{output[-2000:]}")
    value = float(found.group(1))
    return value / 1000 if scaled and found.group(2) == "ms" else value


# --- the servers ----------------------------------------------------------------------------------------


@dataclass
class Stack:
    """The servers under load and what the calls need."""

    auth: Target
    download: Target
    noop: Target
    noop_auth: Target
    token: str
    forged: str
    bodies: dict[str, Path]


def _migrate(module: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", module, "migrate"], env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL
    )


@contextmanager
def stack(folder: Path) -> Iterator[Stack]:
    """Auth and download servers wired as `make run` wires them, plus the two probe servers."""
    secret = secrets.token_hex(64)
    names = ("auth", "auth_m", "download", "download_m", "noop", "noop_m", "noop_auth", "noop_auth_m")
    ports = {name: free_port() for name in names}
    common = {
        "JWT_SECRET_KEY": secret,
        "AUTH_SERVICE_TOKEN": secrets.token_urlsafe(32),
        "LOG_LEVEL": "INFO",
        "AUTH_GRPC_ADDR": f"127.0.0.1:{ports['auth']}",
    }
    auth_env = {
        **common,
        "AUTH_DATABASE_URL": f"sqlite:///{folder / 'auth.db'}",
        "AUTH_METRICS_ADDR": f"127.0.0.1:{ports['auth_m']}",
        "AUTH_BCRYPT_ROUNDS": "4",
    }  # only Register and Login hash; neither is measured
    download_env = {
        **common,
        "DOWNLOAD_DATABASE_URL": f"sqlite:///{folder / 'download.db'}",
        "DOWNLOAD_GRPC_ADDR": f"127.0.0.1:{ports['download']}",
        "STORAGE_DIR": str(folder / "storage"),
        "DOWNLOAD_METRICS_ADDR": f"127.0.0.1:{ports['download_m']}",
        # the task's URLs are on loopback (this machine may have no DNS); GetTask never fetches them
        "DOWNLOAD_ALLOW_PRIVATE_NETWORKS": "true",
    }
    _migrate("auth_server", auth_env)
    _migrate("download_server", download_env)
    with ExitStack() as stack_:
        auth = stack_.enter_context(server_process(["-m", "auth_server"], auth_env, ports["auth"], folder / "auth.log"))
        download = stack_.enter_context(
            server_process(["-m", "download_server"], download_env, ports["download"], folder / "download.log")
        )
        probes = {}
        for name, with_auth in (("noop", False), ("noop_auth", True)):
            metrics = f"127.0.0.1:{ports[name + '_m']}"
            log = folder / f"{name}.log"
            probes[name] = stack_.enter_context(
                probe_process(ports[name], secret, log, with_auth=with_auth, metrics_addr=metrics)
            )
        token, task_id = _user_and_task(ports["auth"], ports["download"])
        bodies = _bodies(folder, task_id)
        yield Stack(
            Target("auth", ports["auth"], ports["auth_m"], auth.pid),
            Target("download", ports["download"], ports["download_m"], download.pid),
            Target("probe", ports["noop"], ports["noop_m"], probes["noop"].pid),
            Target("probe+auth", ports["noop_auth"], ports["noop_auth_m"], probes["noop_auth"].pid),
            token,
            token_for(secrets.token_hex(64), str(uuid.uuid4())),
            bodies,
        )


def _user_and_task(auth_port: int, download_port: int) -> tuple[str, str]:
    """Register and log in a user on the auth server; create a task as that user. Returns (token, task id)."""
    from mediadl.auth.v1 import auth_pb2, auth_pb2_grpc
    from mediadl.download.v1 import download_pb2 as pb
    from mediadl.download.v1 import download_pb2_grpc

    name = f"bench{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    with grpc.insecure_channel(f"127.0.0.1:{auth_port}") as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
        auth.Register(auth_pb2.RegisterRequest(email=f"{name}@example.com", username=name, password=password))
        token: str = auth.Login(auth_pb2.LoginRequest(email=f"{name}@example.com", password=password)).access_token
    md = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(f"127.0.0.1:{download_port}") as channel:
        stub = download_pb2_grpc.DownloadServiceStub(channel)  # type: ignore[no-untyped-call]
        task = stub.CreateTask(bench_task_request("h2load benchmark"), metadata=md).task
        got = stub.GetTask(pb.GetTaskRequest(task_id=task.id), metadata=md).task
        if got.id != task.id:
            raise RuntimeError("GetTask answered another task")
    return token, str(task.id)


def _bodies(folder: Path, task_id: str) -> dict[str, Path]:
    from grpc_health.v1 import health_pb2

    from mediadl.auth.v1 import auth_pb2
    from mediadl.download.v1 import download_pb2 as pb

    messages = {
        HEALTH: health_pb2.HealthCheckRequest().SerializeToString(),
        GET_ME: auth_pb2.GetMeRequest().SerializeToString(),
        GET_TASK: pb.GetTaskRequest(task_id=task_id).SerializeToString(),
        NOOP: b"",
    }
    bodies = {}
    for index, (method, message) in enumerate(messages.items()):
        path = folder / f"body{index}.bin"
        path.write_bytes(frame(message))
        bodies[method] = path
    return bodies


# --- the benchmark --------------------------------------------------------------------------------------


@dataclass
class Results:
    shots: dict[tuple[str, int], list[Shot]]  # (row name, streams) -> one shot per round
    control: str  # what the forged-token check showed
    levels: tuple[int, ...]

    def rps(self, name: str, level: int) -> float:
        """Median calls/s of the row over the rounds."""
        return statistics.median(shot.rps for shot in self.shots[(name, level)])

    def ratio(self, name: str, base: str, level: int) -> float:
        """Median over the rounds of the row's calls/s over its no-op's in the same round (run back to back)."""
        pairs = zip(self.shots[(name, level)], self.shots[(base, level)], strict=True)
        return statistics.median(shot.rps / other.rps if other.rps else 0.0 for shot, other in pairs)

    def cpu_us_per_call(self, name: str, level: int, server: bool = True) -> float:
        """Median CPU microseconds per OK call (the server's, or h2load's); the warm-up second is in the CPU
        figure but not in the calls, so this slightly overstates both sides alike."""
        values = [
            (shot.server_cpu if server else shot.client_cpu) / shot.ok_calls * 1e6
            for shot in self.shots[(name, level)]
            if shot.ok_calls
        ]
        return statistics.median(values) if values else 0.0


ROWS: tuple[tuple[str, str, str, bool], ...] = (
    # row name, target server, method, authenticated
    ("auth health Check (no-op)", "auth", HEALTH, False),
    ("GetMe", "auth", GET_ME, True),
    ("download health Check (no-op)", "download", HEALTH, False),
    ("GetTask", "download", GET_TASK, True),
    ("probe no-op", "probe", NOOP, False),
    ("probe no-op + auth interceptor", "probe+auth", NOOP, True),
)
BASE_OF = {
    "GetMe": "auth health Check (no-op)",
    "GetTask": "download health Check (no-op)",
    "probe no-op + auth interceptor": "probe no-op",
}


def measure(h2load: str, levels: Sequence[int], seconds: float, rounds: int, say: Callable[[str], None]) -> Results:
    """`rounds` rounds; each runs every row at every level back to back, so a busy spell of the machine
    hits a row and its no-op alike, and the ratios are taken within a round."""
    shots: dict[tuple[str, int], list[Shot]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-h2load-") as tmp, stack(Path(tmp)) as servers:
        targets = {t.name: t for t in (servers.auth, servers.download, servers.noop, servers.noop_auth)}
        control = _control(h2load, servers)
        say(control)
        for round_ in range(1, rounds + 1):
            for level in levels:
                for name, where, method, authed in ROWS:
                    token = servers.token if authed else None
                    shot = run_h2load(h2load, targets[where], method, servers.bodies[method], token, level, seconds)
                    if shot.ok_calls != shot.http_2xx:
                        raise RuntimeError(f"{name}: {shot.http_2xx - shot.ok_calls} of {shot.http_2xx} calls not OK")
                    shots.setdefault((name, level), []).append(shot)
                    say(
                        f"round {round_}: {name} x{level}: {shot.rps:,.0f} calls/s (server CPU "
                        f"{shot.server_cpu:.1f} s, h2load {shot.client_cpu:.1f} s)"
                    )
    return Results(shots, control, tuple(levels))


def _control(h2load: str, servers: Stack) -> str:
    """h2load's 2xx count is not gRPC success: a forged token gives 200s that the server counts as refused."""
    shot = run_h2load(h2load, servers.download, GET_TASK, servers.bodies[GET_TASK], servers.forged, 8, 1)
    if shot.http_2xx == 0 or shot.ok_calls != 0:
        raise RuntimeError(f"control failed: forged-token GetTask gave {shot.http_2xx} 2xx, {shot.ok_calls} OK")
    return (
        f"control: GetTask with a forged token: h2load saw {shot.http_2xx:,} HTTP 200s, the server counted "
        f"{shot.ok_calls} OK (every call refused): calls are counted from grpc-status, not HTTP status"
    )


def summary_rows(results: Results) -> list[Row]:
    rows = []
    n = len(next(iter(results.shots.values())))
    for level in results.levels:
        for name in ("GetTask", "GetMe"):
            base = BASE_OF[name]
            ratio = results.ratio(name, base, level)
            rows.append(
                Row(
                    f"h2load {name} vs health Check, {level} streams (bench/h2load_unary.py)",
                    f"{ratio:.2f} ({results.rps(name, level):,.0f} vs {results.rps(base, level):,.0f} calls/s; "
                    f"server CPU {results.cpu_us_per_call(name, level):,.0f} vs "
                    f"{results.cpu_us_per_call(base, level):,.0f} us/call; n={n})",
                    f">= {READ_TARGET:.2f}",
                    ratio >= READ_TARGET,
                )
            )
        name = "probe no-op + auth interceptor"
        cost = 1 - results.ratio(name, BASE_OF[name], level)
        rows.append(
            Row(
                f"h2load auth interceptor cost, {level} streams (bench/h2load_unary.py)",
                f"{cost:.0%} of no-op calls/s ({results.rps(BASE_OF[name], level):,.0f} -> "
                f"{results.rps(name, level):,.0f}; server CPU {results.cpu_us_per_call(BASE_OF[name], level):,.0f} -> "
                f"{results.cpu_us_per_call(name, level):,.0f} us/call; n={n})",
                f"<= {INTERCEPTOR_TARGET:.0%}",
                cost <= INTERCEPTOR_TARGET,
            )
        )
    return rows


def report(results: Results) -> str:
    lines = []
    for name, level in results.shots:
        base = BASE_OF.get(name, name)
        lines.append(
            [
                name,
                level,
                f"{results.rps(name, level):,.0f}",
                f"{results.ratio(name, base, level):.2f}",
                f"{results.cpu_us_per_call(name, level):,.0f}",
                f"{results.cpu_us_per_call(name, level, server=False):,.0f}",
                f"{sum(shot.ok_calls for shot in results.shots[(name, level)]):,}",
            ]
        )
    headers = [
        "RPC",
        "streams",
        "calls/s (grpc-status OK, median)",
        "x no-op",
        "server CPU us/call",
        "h2load CPU us/call",
        "OK calls",
    ]
    return markdown_table(headers, lines) + "\n\n" + results.control


def bench_rows(say: Callable[[str], None], *, quick: bool = False, seconds: float = 3.0, rounds: int = 3) -> list[Row]:
    """For bench.run_all: measure, tell `say` the detailed table, return the summary rows."""
    h2load = h2load_command()
    if h2load is None:
        return [
            Row(
                "h2load unary capacity (bench/h2load_unary.py)",
                "skipped: h2load not found (Debian package nghttp2-client; installed by the bench only as root)",
            )
        ]
    levels, seconds, rounds = ((64,), 1.0, 1) if quick else ((64, 128), seconds, rounds)
    results = measure(h2load, levels, seconds, rounds, say)
    for line in report(results).splitlines():
        say(line)
    return summary_rows(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tiny run, for smoke tests")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per row and round (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default 3)")
    parser.add_argument("--streams", type=int, nargs="+", default=[64, 128], help="concurrent streams (default 64 128)")
    args = parser.parse_args(argv)
    h2load = h2load_command()
    if h2load is None:
        print("h2load not found: install the Debian package nghttp2-client (the bench does so itself as root)")
        return 1
    levels, seconds, rounds = ((64,), 1.0, 1) if args.quick else (tuple(args.streams), args.seconds, args.rounds)
    results = measure(h2load, levels, seconds, rounds, print)
    print()
    print(report(results))
    for row in summary_rows(results):
        print(row.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
