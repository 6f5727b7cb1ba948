"""The exporter's door under 1,000 idle connections, against prometheus_client's own server.

Each server runs in a process of its own serving the same interface metrics;
the bench opens 1,000 connections that never send a byte and compares the
server's threads, its RSS and the time of one scrape with and without them.
sockdiag's door keeps one loop thread and a fixed worker pool; the peer
(prometheus_client.start_http_server, a thread per connection) is the
baseline.

Run: pytest bench/bench_export_idle.py -s
"""

from __future__ import annotations

import contextlib
import re
import resource
import select
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("prometheus_client")

from sockdiag import web  # noqa: E402

IDLE = 1000
SOCKDIAG = [sys.executable, "-c", "from sockdiag.cli import main; main()", "export",
            "--listen", "127.0.0.1:0"]
PEER = [sys.executable, "-c", """
import resource, sys, threading
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
from prometheus_client import start_http_server
from sockdiag import export
server, _ = start_http_server(0, addr="127.0.0.1", registry=export.registry(export.Collector()))
print(f"sockdiag: serving http://127.0.0.1:{server.server_port}/metrics", file=sys.stderr, flush=True)
threading.Event().wait()
"""]
RESULTS: dict[str, dict[str, float]] = {}


@contextlib.contextmanager
def server(command):
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stderr], [], [], 30)
        line = process.stderr.readline() if ready else ""
        url = re.search(r"serving (http://\S+/metrics)", line)
        assert url, f"server did not start: {line!r}"
        yield process.pid, url.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()


def status(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {"threads": int(fields["Threads"]), "rss_kb": int(fields["VmRSS"].split()[0])}


def scrape_median(url: str, rounds: int = 10) -> float:
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def measure(command) -> dict[str, float]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * IDLE)), hard))
    with server(command) as (pid, url):
        quiet_scrape = scrape_median(url)
        quiet = status(pid)
        host, port = url.split("/")[2].split(":")
        idle = [socket.create_connection((host, int(port))) for _ in range(IDLE)]
        try:
            time.sleep(1.0)
            busy_scrape = scrape_median(url)
            busy = status(pid)
        finally:
            for conn in idle:
                conn.close()
    return {"threads idle": quiet["threads"], f"threads with {IDLE} idle": busy["threads"],
            "RSS growth MB": (busy["rss_kb"] - quiet["rss_kb"]) / 1024,
            "scrape ms": quiet_scrape * 1e3, f"scrape ms with {IDLE} idle": busy_scrape * 1e3,
            "scrape ratio": busy_scrape / quiet_scrape}


@pytest.mark.parametrize("name, command", [("sockdiag export", SOCKDIAG),
                                           ("prometheus_client.start_http_server", PEER)])
def test_idle_connections(benchmark, name, command):
    result = benchmark.pedantic(measure, (command,), rounds=1, iterations=1)
    RESULTS[name] = result
    if name == "sockdiag export":
        # The door's promises that do not depend on timing: threads bounded
        # (main, loop, pool) and memory; the scrape ratio is reported below.
        assert result[f"threads with {IDLE} idle"] <= 2 + web.WORKERS
        assert result["RSS growth MB"] < 10


def teardown_module():
    print(f"\nexporter with {IDLE} idle connections:")
    for name, result in RESULTS.items():
        print(f"  {name}:")
        for key, value in result.items():
            print(f"    {key:<32} {value:10.2f}")
