"""The exporter's door against a hostile or careless user: memory per idle TLS
connection (given back on close), hashes checked at start-up, a wrong-password
flood that does not hold valid scrapes, Accept-Encoding q-values, and warnings
for a certificate out of date or a config that turns nothing on."""

from __future__ import annotations

import contextlib
import gzip
import re
import resource
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

bcrypt = pytest.importorskip("bcrypt")
pytest.importorskip("yaml")

from sockdiag import web  # noqa: E402
from testsupport.exposition import get_metrics  # noqa: E402

from conftest import requires_linux  # noqa: E402

pytestmark = requires_linux

EXPORTER = [sys.executable, "-c", "from sockdiag.cli import main; main()", "export", "--listen", "127.0.0.1:0"]
BODY = b"# HELP door_test a constant\n# TYPE door_test gauge\ndoor_test 1.0\n" * 50


def run_exporter(config_text: str, tmp_path) -> subprocess.CompletedProcess:
    """`sockdiag export --web-config` with config_text, stopped as soon as it serves (or fails)."""
    path = tmp_path / "web.yml"
    path.write_text(config_text)
    process = subprocess.Popen([*EXPORTER, "--web-config", str(path)], stderr=subprocess.PIPE, text=True)
    lines = []
    while (line := process.stderr.readline()):
        lines.append(line)
        if "sockdiag: serving" in line:
            process.terminate()
            break
    process.wait(timeout=10)
    process.stderr.close()
    return subprocess.CompletedProcess(process.args, process.returncode, "", "".join(lines))


def test_a_malformed_bcrypt_hash_is_refused_at_start(tmp_path):
    done = run_exporter('basic_auth_users:\n  prom: "$2y$10$short"\n', tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"sockdiag: web config {tmp_path / 'web.yml'}: basic_auth_users.prom: "
                                  "not a bcrypt hash")


@pytest.mark.parametrize("text, warning", [
    ("", "turns on neither TLS nor basic auth: plain HTTP, open to anyone who can connect"),
    ("http_server_config:\n  headers:\n    X-A: b\n", "turns on neither TLS nor basic auth"),
    ("basic_auth_users: {}\n", "basic_auth_users is empty: no one needs a password"),
])
def test_a_config_that_turns_nothing_on_warns(tmp_path, text, warning):
    done = run_exporter(text, tmp_path)
    first, *rest = done.stderr.splitlines()
    assert first.startswith(f"sockdiag: warning: web config {tmp_path / 'web.yml'}: ") and warning in first
    assert rest[-1].startswith("sockdiag: serving http://")


def test_an_expired_certificate_warns(tmp_path, certificate):
    _, key = certificate
    expired = tmp_path / "expired.crt"
    request = subprocess.run(["openssl", "req", "-new", "-key", str(key), "-subj", "/CN=127.0.0.1"],
                             check=True, capture_output=True).stdout
    subprocess.run(["openssl", "x509", "-req", "-signkey", str(key), "-days", "-1", "-out", str(expired)],
                   input=request, check=True, capture_output=True)
    done = run_exporter(f"tls_server_config:\n  cert_file: {expired}\n  key_file: {key}\n", tmp_path)
    lines = done.stderr.splitlines()
    assert re.fullmatch(rf"sockdiag: warning: web config \S+: the certificate {expired} expired on .* GMT: "
                        "clients will refuse it", lines[0]), lines
    assert lines[-1].startswith("sockdiag: serving https://")


@contextlib.contextmanager
def door(config: web.WebConfig | None = None):
    server = web.MetricsServer(lambda: BODY, "127.0.0.1", 0, config)
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("accept, gzipped", [
    ("gzip;q=0, identity", False), ("gzip", True), ("identity", False), ("*;q=0", False), ("*", True),
    ("br;q=1, gzip;q=0.5", True), ("gzip;q=0.000", False), ("gzip;q=2", False), ("GZip ; Q=0.1", True),
])
def test_accept_encoding_q_values_are_honoured(accept, gzipped):
    with door() as port:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": accept})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            assert (response.headers.get("Content-Encoding") == "gzip") is gzipped
    assert (gzip.decompress(body) if gzipped else body) == BODY


def test_a_wrong_password_flood_does_not_hold_valid_scrapes():
    """Eight threads send wrong passwords against a bcrypt hash of cost 13
    (a second or so per check on two cores); a scraper whose credentials were
    verified before is answered while every one of those checks still waits."""
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=13))
    with door(web.WebConfig(users={"prom": hashed})) as port:
        def status(password: str) -> int:
            return get_metrics(port, "prom", password, timeout=120)[0]

        assert status("right") == 200  # verified once: remembered
        answered = []
        flood = [threading.Thread(target=lambda: answered.append(status("wrong"))) for _ in range(8)]
        for thread in flood:
            thread.start()
        time.sleep(0.2)  # the wrong passwords are being checked
        valid = [status("right") for _ in range(5)]
        flood_answered_meanwhile = len(answered)
        for thread in flood:
            thread.join()
    assert valid == [200] * 5
    assert flood_answered_meanwhile == 0
    assert answered == [401] * 8


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def test_idle_tls_connections_cost_what_plain_ones_do_and_are_given_back(tmp_path, certificate):
    """1,000 idle TLS connections (handshake done, then nothing): at most
    100 KiB each while open, and the exporter back within 10 MB of idle
    after they close (asyncio's 256 KiB read buffer per connection took 300 MB)."""
    cert, key = certificate
    config = tmp_path / "web.yml"
    config.write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    process = subprocess.Popen([*EXPORTER, "--web-config", str(config)], stderr=subprocess.PIPE, text=True)
    try:
        port = int(re.search(r":(\d+)/metrics", process.stderr.readline()).group(1))
        context = ssl.create_default_context(cafile=str(cert))

        def connect():
            return context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")

        for conn in [connect() for _ in range(64)]:
            conn.close()
        time.sleep(2.5)
        idle = rss_kib(process.pid)
        conns = [connect() for _ in range(1000)]
        time.sleep(0.5)
        while_open = rss_kib(process.pid)
        for conn in conns:
            conn.close()
        time.sleep(2.5)  # memory is given back a second after the closes
        after = rss_kib(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()
    assert (while_open - idle) / 1000 <= 100, (idle, while_open)
    assert after - idle <= 10 * 1024, (idle, after)
