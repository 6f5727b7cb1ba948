"""The exporter's door under 1,000 idle connections, against prometheus_client's own server.

Each server runs in a process of its own serving the same interface metrics;
the bench opens 1,000 connections that never send a byte and compares the
server's threads, its RSS and the time of one scrape with and without them.
sockdiag's door keeps one loop thread and a fixed worker pool; the peer
(prometheus_client.start_http_server, a thread per connection) is the
baseline.  The same idle connections over TLS (--web-config; each completes
its handshake, then sends nothing) give the memory per connection while
they are open and what is left once they closed, over three rounds.

Run: pytest bench/bench_export_idle.py -s
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
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
        url = re.search(r"serving (https?://\S+/metrics)", line)
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


def self_signed(folder: str) -> tuple[str, str]:
    """(web config, certificate) for TLS on 127.0.0.1 with a self-signed certificate made by openssl."""
    cert, key, config = (os.path.join(folder, name) for name in ("server.crt", "server.key", "web.yml"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    with open(config, "w") as f:
        f.write(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    return config, cert


def idle_rounds(tls: bool, folder: str, rounds: int = 3) -> dict[str, float]:
    """RSS of the exporter idle, with IDLE idle connections open, and after they closed, per round."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * IDLE)), hard))
    config, cert = self_signed(folder)
    context = ssl.create_default_context(cafile=cert)

    def connect(port: int):
        conn = socket.create_connection(("127.0.0.1", port))
        return context.wrap_socket(conn, server_hostname="127.0.0.1") if tls else conn

    with server(SOCKDIAG + (["--web-config", config] if tls else [])) as (pid, url):
        port = int(url.split("/")[2].split(":")[1])
        for conn in [connect(port) for _ in range(64)]:  # the idle exporter has served before
            conn.close()
        time.sleep(3)
        idle_kb = status(pid)["rss_kb"]
        most_open, most_left = 0, 0
        for _ in range(rounds):
            conns = [connect(port) for _ in range(IDLE)]
            time.sleep(1)
            most_open = max(most_open, status(pid)["rss_kb"] - idle_kb)
            for conn in conns:
                conn.close()
            time.sleep(3)  # the door gives memory back a second after the closes
            most_left = max(most_left, status(pid)["rss_kb"] - idle_kb)
    return {"idle RSS MB": idle_kb / 1024, f"KiB per open connection (most of {rounds})": most_open / IDLE,
            f"MB above idle, {IDLE} open": most_open / 1024, "MB above idle, after they closed": most_left / 1024}


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_idle_connections_memory(benchmark, tmp_path, tls):
    result = benchmark.pedantic(idle_rounds, (tls, str(tmp_path)), rounds=1, iterations=1)
    RESULTS[f"sockdiag export, {'TLS' if tls else 'plain'} connections"] = result
    assert result[f"MB above idle, {IDLE} open"] <= 100
    assert result["MB above idle, after they closed"] <= 10


def teardown_module():
    print(f"\nexporter with {IDLE} idle connections:")
    for name, result in RESULTS.items():
        print(f"  {name}:")
        for key, value in result.items():
            print(f"    {key:<32} {value:10.2f}")
