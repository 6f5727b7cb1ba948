"""One scrape of `sockdiag export` vs process_sockets itself, on ~19,000 sockets.

A child process holds 9,500 loopback connections (both ends: 19,000 TCP
sockets); the scrape must cost about what reading its sockets costs.

Run: pytest bench/bench_export.py   (the ratio table prints at the end)
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import textwrap
import time

import pytest

prometheus_client = pytest.importorskip("prometheus_client")

import sockdiag  # noqa: E402
from sockdiag import export  # noqa: E402

CONNECTIONS = int(os.environ.get("SOCKDIAG_BENCH_CONNECTIONS", "9500"))

HOLDER = textwrap.dedent("""
    import resource, socket, struct, sys
    count = int(sys.argv[1])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 2 * count + 64), hard), hard))
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    held = []
    while len(held) < 2 * count:
        batch = [socket.create_connection(listener.getsockname())
                 for _ in range(min(1000, count - len(held) // 2))]
        held += batch + [listener.accept()[0] for _ in batch]
    held[0].send(b"x" * 100_000)  # one connection with bytes queued
    print("ready", flush=True)
    sys.stdin.read()
    # Reset rather than close: thousands of TIME_WAIT sockets would slow
    # every sock_diag dump on the machine for a minute.
    for sock in held:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
""")


@contextlib.contextmanager
def holder(connections: int):
    """pid of a child process holding connections loopback connections."""
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(connections)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n", "holder failed (ulimit -n too low?)"
        yield child.pid
    finally:
        child.stdin.close()  # the child resets its connections and exits
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()


@pytest.fixture(scope="module")
def busy_pid():
    """pid of a process holding CONNECTIONS loopback connections."""
    with holder(CONNECTIONS) as pid:
        yield pid


def per_call(benchmark, function, *args) -> float:
    benchmark.pedantic(function, args, rounds=15, warmup_rounds=2)
    return benchmark.stats.stats.median


GROUP = f"export, one process with {2 * CONNECTIONS} sockets"


@pytest.mark.benchmark(group="export")
def test_process_sockets(benchmark, busy_pid, ratios):
    assert len(sockdiag.process_sockets(busy_pid)) >= 2 * CONNECTIONS
    ratios.add(GROUP, "sockdiag.process_sockets(pid)", per_call(benchmark, sockdiag.process_sockets, busy_pid))


@pytest.mark.benchmark(group="export")
def test_aggregation_alone(benchmark, busy_pid, ratios):
    read = [(str(busy_pid), "python3", sockdiag.process_sockets(busy_pid))]
    ratios.add(GROUP, "aggregation alone (process_families)",
               per_call(benchmark, export.process_families, read))


@pytest.mark.benchmark(group="export")
def test_interleaved_ratio(benchmark, busy_pid, ratios):
    """One scrape (with and without --per-socket) against process_sockets,
    alternated call by call: a load that drifts on a shared machine hits them
    alike, so these ratios are the ones to quote."""
    scrape = export.registry(export.Collector([busy_pid]))
    scrape_per_socket = export.registry(
        export.Collector([busy_pid], per_socket=True, max_series=1000))
    calls = {
        "sockdiag.process_sockets(pid)": lambda: sockdiag.process_sockets(busy_pid),
        "one scrape (exposition of /metrics)": lambda: prometheus_client.generate_latest(scrape),
        "one scrape, --per-socket --max-series 1000":
            lambda: prometheus_client.generate_latest(scrape_per_socket),
    }
    seconds: dict[str, list[float]] = {name: [] for name in calls}

    def each_once():
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - started)

    benchmark.pedantic(each_once, rounds=21, warmup_rounds=2)
    for name, times in seconds.items():
        ratios.add(f"{GROUP}, interleaved", name, statistics.median(times))
