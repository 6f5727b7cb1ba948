"""The exporter at its door: idle and slow clients, malformed requests, many
scrapers, TLS and basic auth from a web config, scraped by a real Prometheus."""

from __future__ import annotations

import os
import contextlib
import gzip
import re
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import prometheus_client
import pytest

bcrypt = pytest.importorskip("bcrypt")
pytest.importorskip("yaml")
pytest.importorskip("prometheus_client")

from sockdiag import export, web  # noqa: E402
from testsupport.exposition import get_metrics  # noqa: E402

from conftest import requires_linux, wait_until  # noqa: E402
from prometheus_server import PROMETHEUS, prometheus_server  # noqa: E402

pytestmark = requires_linux

EXPORTER = [sys.executable, "-c", "from sockdiag.cli import main; main()", "export"]
BODY = b"# HELP door_test a constant\n# TYPE door_test gauge\ndoor_test 1.0\n"
PASSWORD = "correct horse"


@contextlib.contextmanager
def door(config: web.WebConfig | None = None, **timeouts):
    """A MetricsServer on a free loopback port serving BODY; yields (host, port)."""
    server = web.MetricsServer(lambda: BODY, "127.0.0.1", 0, config, **timeouts)
    try:
        yield server.server_address[:2]
    finally:
        server.shutdown()
        server.server_close()


def exchange(address, raw: bytes, timeout: float = 5.0) -> tuple[bytes, float]:
    """Send raw bytes, read until the server closes; (answer, seconds it took)."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=timeout) as conn:
        conn.sendall(raw)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer, time.monotonic() - started


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_scrape_answers_and_keeps_the_connection_alive():
    with door() as address:
        with socket.create_connection(address, timeout=5) as conn:
            for _ in range(3):
                conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                head = conn.recv(65536)
                assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(BODY)


def test_gzip_when_asked():
    with door() as (host, port):
        request = urllib.request.Request(f"http://{host}:{port}/metrics",
                                          headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(response.read()) == BODY


@pytest.mark.parametrize("raw, expected", [
    (b"GET /metrics\r\n", 400),  # HTTP/0.9: answered at once, not after a timeout
    (b"\x16\x03\x01\x00\xa5garbage\r\n\r\n", 400),
    (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 400),
    (b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\n" + b"X-Big: " + b"a" * 40000 + b"\r\n\r\n", 431),
    (b"GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n", 404),
    (b"DELETE /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", 405),
])
def test_malformed_requests_are_answered_at_once(raw, expected):
    with door() as address:
        answer, took = exchange(address, raw)
    assert status(answer) == expected
    assert took < 1.0


def test_slow_request_is_timed_out():
    with door(request_timeout_s=0.5) as address:
        answer, took = exchange(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    assert status(answer) == 408
    assert 0.4 < took < 3


def test_idle_connections_are_closed():
    with door(request_timeout_s=0.5, idle_timeout_s=1.0) as address:
        quiet, took_quiet = exchange(address, b"")
        with socket.create_connection(address, timeout=5) as conn:
            conn.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
            started = time.monotonic()
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
            took_idle = time.monotonic() - started
    assert quiet == b"" and 0.4 < took_quiet < 3
    assert answer.endswith(BODY) and 0.9 < took_idle < 4


def test_thousand_idle_clients_cost_no_thread_and_block_no_scrape():
    web.raise_fd_limit()
    threads_before = threading.active_count()
    with door() as (host, port):
        idle = [socket.create_connection((host, port)) for _ in range(1000)]
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
                assert response.read() == BODY
            # The loop thread plus the worker pool, whatever the number of clients.
            assert threading.active_count() <= threads_before + 1 + web.WORKERS
        finally:
            for conn in idle:
                conn.close()


def test_twenty_concurrent_scrapers_are_all_served():
    with door() as (host, port):
        def one(_):
            with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
                return response.read()
        with ThreadPoolExecutor(20) as pool:
            assert list(pool.map(one, range(20))) == [BODY] * 20


def test_listen_backlog_is_sized_for_many_scrapers():
    with open("/proc/sys/net/core/somaxconn") as f:
        somaxconn = int(f.read())
    with door() as (host, port):
        listing = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                                 text=True, check=True).stdout.split()
    # For a listener ss's Send-Q column is the backlog.
    assert int(listing[2]) == min(web.LISTEN_BACKLOG, somaxconn)


# --- web config ----------------------------------------------------------------


@pytest.fixture
def web_config(tmp_path, certificate):
    cert, key = certificate
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    hashed = "$2y$" + hashed[4:]  # as htpasswd -B writes it
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
                    f"basic_auth_users:\n  prometheus: '{hashed}'\n"
                    "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n")
    return path


def test_tls_and_basic_auth(web_config, certificate):
    cert, _ = certificate
    with door(web.load_web_config(str(web_config))) as (_, port):
        code, body, headers = get_metrics(port, "prometheus", PASSWORD, cafile=cert)
        assert (code, body) == (200, BODY)
        assert headers["X-Content-Type-Options"] == "nosniff"
        for user, password in (("prometheus", "wrong"), ("nobody", PASSWORD), (None, None)):
            code, _, headers = get_metrics(port, user, password, cafile=cert)
            assert code == 401 and headers["WWW-Authenticate"].startswith("Basic")
        # Plain HTTP to the TLS port is refused: no metrics in the clear.
        with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                resp.read()


@contextlib.contextmanager
def exporter(*args: str):
    """`sockdiag export ARGS` in a subprocess; yields (process, first stderr lines)."""
    # Unbuffered bytes: a buffered reader may already hold the next line, which select cannot see.
    process = subprocess.Popen([*EXPORTER, *args], stderr=subprocess.PIPE, bufsize=0)
    try:
        received = b""
        deadline = time.monotonic() + 20
        while not re.search(rb"sockdiag: serving.*\n", received) and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stderr], [], [], 1)
            if ready:
                chunk = os.read(process.stderr.fileno(), 4096)
                if not chunk:
                    break
                received += chunk
        yield process, received.decode().splitlines(keepends=True)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()


@pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus package")
def test_real_prometheus_scrapes_over_tls_with_basic_auth(tmp_path, web_config, certificate):
    cert, _ = certificate
    with exporter("--listen", "127.0.0.1:0", "--web-config", str(web_config)) as (_, lines):
        url = re.search(r"serving (https://\S+)/metrics", "".join(lines))
        assert url, lines
        target = url.group(1).removeprefix("https://")
        options = ("    scheme: https\n"
                   f"    tls_config:\n      ca_file: {cert}\n"
                   f"    basic_auth:\n      username: prometheus\n      password: '{PASSWORD}'\n")
        with prometheus_server(tmp_path, [target], scrape_options=options) as prom:
            assert wait_until(lambda: prom.query('up{job="sockdiag"} == 1'), timeout=30), \
                prom.get("/api/v1/targets")
            assert prom.query("sockdiag_interface_receive_bytes_total")
        wrong = tmp_path / "wrong"
        wrong.mkdir()
        options = options.replace(f"'{PASSWORD}'", "'wrong'")
        with prometheus_server(wrong, [target], scrape_options=options) as prom:
            def last_error():
                active = prom.get("/api/v1/targets")["data"]["activeTargets"]
                return active and active[0]["lastError"]
            assert wait_until(last_error, timeout=30)
            assert "401" in last_error()


def test_listening_beyond_loopback_without_web_config_warns(web_config):
    with exporter("--listen", "0.0.0.0:0") as (process, lines):
        assert process.poll() is None
        assert lines[0].startswith("sockdiag: warning: serving 0.0.0.0:0 beyond loopback")
        assert len(lines) == 2 and lines[1].startswith("sockdiag: serving http://")
    with exporter("--listen", "0.0.0.0:0", "--web-config", str(web_config)) as (_, lines):
        assert len(lines) == 1 and lines[0].startswith("sockdiag: serving https://")
    with exporter("--listen", "127.0.0.1:0") as (_, lines):
        assert len(lines) == 1


@pytest.mark.parametrize("text, message", [
    (None, "No such file or directory"),
    ("tls_server_config: [\n", "not valid YAML"),
    ("tls_config:\n  cert_file: a\n", "unknown or unsupported key 'tls_config'"),
    ("basic_auth_users:\n  alice: plain\n", "basic_auth_users.alice: not a bcrypt hash"),
    ("tls_server_config:\n  cert_file: a.crt\n", "needs cert_file and key_file"),
    ("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n", "cannot load cert_file"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS9\n",
     "unknown TLS version 'TLS9'"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n",
     "tls_server_config.cipher_suites is not supported"),
])
def test_bad_web_config_is_one_line_exit_1(tmp_path, text, message):
    path = tmp_path / "web.yml"
    if text is not None:
        path.write_text(text)
    result = subprocess.run([*EXPORTER, "--listen", "127.0.0.1:0", "--web-config", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stderr.startswith(f"sockdiag: web config {path}") or text is None


def test_serve_keeps_the_collectors_output():
    collector = export.Collector()
    server, _ = web.serve(collector, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics",
                                    timeout=10) as response:
            assert b"sockdiag_interface_receive_bytes_total" in response.read()
    finally:
        server.shutdown()
        server.server_close()
    assert wait_until(lambda: not server.thread.is_alive(), timeout=10)


def test_the_exporter_counts_its_own_fds_as_prometheus_client_names_them():
    families = {f.name: f for f in export.registry(export.Collector()).collect()}
    with open("/proc/self/limits") as f:
        soft = next(line.split()[3] for line in f if line.startswith("Max open files"))
    assert families["process_open_fds"].samples[0].value == len(os.listdir("/proc/self/fd"))
    assert str(int(families["process_max_fds"].samples[0].value)) == soft
    theirs = {f.name: f.samples[0].value
              for f in prometheus_client.ProcessCollector(registry=None).collect()}
    ours = {name: families[name].samples[0].value for name in theirs if name in families}
    assert ours.keys() == {"process_virtual_memory_bytes", "process_resident_memory_bytes",
                           "process_start_time_seconds", "process_cpu_seconds",
                           "process_open_fds", "process_max_fds"}
    assert ours["process_start_time_seconds"] == theirs["process_start_time_seconds"]
    for name in ("process_virtual_memory_bytes", "process_resident_memory_bytes",
                 "process_cpu_seconds"):  # read a moment apart
        assert ours[name] == pytest.approx(theirs[name], rel=0.1, abs=1), name
