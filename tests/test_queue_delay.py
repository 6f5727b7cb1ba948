"""Queue delay and why bytes wait, against the truth: real readers, real writers.

The truth is measured, not modelled: at a moment t0 the offset of the last
byte written is acked + unacked + unsent (one TCP_INFO read through Python's
own getsockopt), and the byte's real wait is the time until bytes_acked
passes that offset.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sockdiag
from sockdiag.drain import DrainTracker, interval_limit
from testsupport.loopback import connected_pair, fill, wait_until
from testsupport.queue_delay import (SAMPLE_S, bottleneck_case, kernel_tcp_info, steady_reader_case,
                                     tracked)

from conftest import requires_linux, requires_root, requires_ss

pytestmark = requires_linux

def ss_rwnd_limited_percent(sock: socket.socket) -> float:
    port, peer = sock.getsockname()[1], sock.getpeername()[1]
    out = subprocess.run(["ss", "-tniOH", "sport", "=", f":{port}", "and", "dport", "=", f":{peer}"],
                         capture_output=True, text=True, check=True).stdout
    found = re.search(r"rwnd_limited:\d+ms\(([\d.]+)%\)", out)
    return float(found.group(1)) if found else 0.0


# (unsent, snapshot's limit, probes, chrono counters before, after) -> limit.
# The counters are busy, receiver-limited and sender-limited microseconds.
INTERVAL_LIMITS = [
    ((10, "network", 1, (0, 0, 0), (100, 0, 0)), "receiver"),  # zero-window probes
    ((10, "network", 0, None, (100, 0, 0)), "network"),  # no counters: the snapshot stands
    ((10, "receiver", 0, (100, 50, 0), (100, 60, 0)), "receiver"),  # nothing busy: the snapshot
    ((10, None, 0, (0, 0, 0), (100, 60, 30)), "receiver"),
    ((10, None, 0, (0, 0, 0), (100, 30, 60)), "sender_buffer"),
    ((10, None, 0, (0, 0, 0), (100, 10, 20)), "network"),  # the rest: bytes unsent
    ((0, "application", 0, (0, 0, 0), (100, 10, 20)), "application"),  # the rest, nothing unsent
    ((10, None, 0, (0, 0, 0), (100, 40, 40)), "receiver"),  # ties go to the receiver,
    ((10, None, 0, (0, 0, 0), (100, 0, 50)), "sender_buffer"),  # then to the sender's buffer
    ((10, None, 0, (0, 0, 0), (100, 50, 0)), "receiver"),
    ((10, None, 0, (50, 50, 50), (100, 40, 40)), "network"),  # counters that went back count 0
]


@pytest.mark.parametrize("arguments, limit", INTERVAL_LIMITS)
def test_interval_limit_takes_the_largest_growth(arguments, limit):
    assert interval_limit(*arguments) == limit


@requires_ss
def test_a_reader_that_stopped_is_stalled_on_its_receiver():
    client, server = connected_pair()
    with client, server:
        fill(client)

        def settled():  # the peer's window has closed: nothing more is acknowledged
            before = kernel_tcp_info(client).bytes_acked
            time.sleep(0.3)
            return kernel_tcp_info(client).bytes_acked == before and before
        acked = wait_until(settled, timeout=10)
        tracker = DrainTracker()
        first = tracked(client, tracker, 3)
        later = tracked(client, tracker, 3)
        assert kernel_tcp_info(client).bytes_acked == acked  # the kernel: nothing acknowledged
        assert ss_rwnd_limited_percent(client) >= 90  # ss: the peer's window is the limit
        assert later.limited_by == first.limited_by == "receiver"
        assert later.queue_delay_s is None and later.queue_delay_basis == "stalled"
        assert later.stalled_s == pytest.approx(first.stalled_s + 3 * SAMPLE_S, abs=0.2)
        assert first.stalled_s >= 0.3


def test_a_steady_reader_gets_a_queue_delay_within_a_quarter_of_the_truth():
    rate = 1_000_000
    estimate, truth = steady_reader_case(rate)
    assert estimate.queue_delay_basis == "acked_rate"
    assert estimate.limited_by == "receiver"
    assert estimate.queue_delay_s == pytest.approx(truth, rel=0.25)
    assert estimate.queue_delay_s == pytest.approx(estimate.unsent / rate, rel=0.25)


SMALL_BUFFER_WRITER = """
import socket, sys, threading
listener = socket.create_server(("127.0.0.1", 0))
client = socket.socket()
client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
client.connect(listener.getsockname())
server, _ = listener.accept()
threading.Thread(target=lambda: [None for _ in iter(lambda: server.recv(1 << 20), b"")], daemon=True).start()
threading.Thread(target=lambda: [client.sendall(b"w" * 65536) for _ in iter(int, 1)], daemon=True).start()
print(client.getsockname()[1], flush=True)
sys.stdin.read()
"""


@requires_ss
def test_a_writer_with_a_small_send_buffer_is_limited_by_it():
    # Writer and reader in a process of their own: the test's sampling takes no time from them.
    child = subprocess.Popen([sys.executable, "-c", SMALL_BUFFER_WRITER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        tracker, verdicts, full = DrainTracker(), [], 0
        for _ in range(8):
            time.sleep(SAMPLE_S)
            mine = [s for s in sockdiag.process_sockets(child.pid) if s.local_port == port]
            [found] = tracker.update(mine, time.monotonic())
            verdicts.append((found.limited_by, found.queue_delay_s))
            # ss: nothing unsent and the buffer full (w >= tb): everything written is in flight.
            line = subprocess.run(["ss", "-tnmiOH", "sport", "=", f":{port}"], capture_output=True,
                                  text=True, check=True).stdout
            skmem = dict(re.findall(r"([a-z]+)(\d+)", re.search(r"skmem:\(([^)]*)\)", line).group(1)))
            full += "notsent" not in line and int(skmem["w"]) >= int(skmem["tb"])
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    assert full >= 4, full
    assert verdicts[1:].count(("sender_buffer", 0.0)) >= len(verdicts[1:]) - 1, verdicts


@requires_root
def test_a_bottleneck_in_the_network_is_the_network():
    found, truth, info = bottleneck_case()
    # The kernel: the receiver and the send buffer limited it for hardly any time.
    assert info.rwnd_limited_us + info.sndbuf_limited_us < info.busy_time_us / 20
    assert found.limited_by == "network"
    assert found.queue_delay_basis == "acked_rate"
    assert found.queue_delay_s == pytest.approx(truth, rel=0.25)
    assert found.queue_delay_s == pytest.approx(found.unsent / (10e6 / 8), rel=0.25)


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
requires_nginx = pytest.mark.skipif(not os.path.exists(NGINX) or shutil.which("curl") is None,
                                    reason="needs Debian's nginx-light and curl (.ci/run installs them)")


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(child) for child in children.read().split()]


@pytest.fixture
def nginx(tmp_path):
    """Debian's nginx serving a 200 MB file on loopback: (worker pid, port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open(tmp_path / "big", "wb") as big:
        big.truncate(200 << 20)
    (tmp_path / "nginx.conf").write_text(f"""
        daemon off; worker_processes 1; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;
        user root;
        events {{}}
        http {{
            access_log off; sendfile on;
            client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;
            fastcgi_temp_path {tmp_path}/fastcgi; uwsgi_temp_path {tmp_path}/uwsgi;
            scgi_temp_path {tmp_path}/scgi;
            server {{ listen 127.0.0.1:{port}; root {tmp_path}; }}
        }}""")
    master = subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                              stderr=subprocess.PIPE)
    try:
        workers = wait_until(lambda: _children(master.pid), timeout=10)
        wait_until(lambda: socket.create_connection(("127.0.0.1", port)).close() or True, timeout=10)
        yield workers[0], port
    finally:
        master.terminate()
        master.wait(timeout=10)


def ss_connection(local_port: int, remote_port: int) -> str:
    return subprocess.run(["ss", "-tniOH", "sport", "=", f":{local_port}", "and", "dport", "=",
                           f":{remote_port}"], capture_output=True, text=True, check=True).stdout


@requires_ss
@requires_nginx
def test_nginx_serving_a_client_that_stopped_reading(nginx):
    worker, port = nginx
    curl = subprocess.Popen(["curl", "-s", "--limit-rate", "200k", "-o", "/dev/null",
                             f"http://127.0.0.1:{port}/big"])
    try:
        def connection():
            found = [s for s in sockdiag.process_sockets(worker)
                     if s.local_port == port and s.state == "ESTABLISHED" and (s.unsent or 0) > 0]
            return found and found[0]
        served = wait_until(connection, timeout=10)
        curl.send_signal(signal.SIGSTOP)  # the client stops reading
        acked = re.compile(r"bytes_acked:(\d+)")

        def window_closed():
            before = acked.search(ss_connection(port, served.remote_port)).group(1)
            time.sleep(0.5)
            return acked.search(ss_connection(port, served.remote_port)).group(1) == before
        wait_until(window_closed, timeout=15)
        before = acked.search(ss_connection(port, served.remote_port)).group(1)
        # The installed command, as a user runs it.
        out = subprocess.run([str(Path(sys.executable).parent / "sockdiag"), "watch", str(worker),
                              "--port", str(port), "--count", "6", "--interval", "0.5", "--json"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        after = acked.search(ss_connection(port, served.remote_port)).group(1)
        assert before == after  # ss: nothing acknowledged while sockdiag looked
        looks = [json.loads(line) for line in out.stdout.splitlines()]
        seen = [next(s for s in look["sockets"] if s["remote"] == served.remote) for look in looks]
        assert all(s["limited_by"] == "receiver" for s in seen)
        assert seen[-1]["queue_delay_s"] is None and seen[-1]["queue_delay_basis"] == "stalled"
        stalls = [s["stalled_s"] for s in seen[1:]]
        assert stalls == sorted(stalls) and stalls[-1] - stalls[0] >= 1.5  # growing, look after look
        assert seen[-1]["unsent"] > 1 << 20
    finally:
        curl.kill()
        curl.wait()


def ss_unsent_and_acked(pid: int) -> dict[tuple[int, int], tuple[int, int]]:
    """{(local port, remote port): (notsent, bytes_acked)} of pid's connections, from ss."""
    out = subprocess.run(["ss", "-tnpiOH", "state", "established"], capture_output=True, text=True,
                         check=True).stdout
    found = {}
    for line in out.splitlines():
        if f"pid={pid}," not in line:
            continue
        fields = line.split()
        local, remote = fields[2].rsplit(":", 1)[1], fields[3].rsplit(":", 1)[1]
        notsent = re.search(r"notsent:(\d+)", line)
        acked = re.search(r"bytes_acked:(\d+)", line)
        found[int(local), int(remote)] = (int(notsent.group(1)) if notsent else 0,
                                          int(acked.group(1)) if acked else 0)
    return found


@pytest.fixture
def stalled_pairs():
    """Three connections of this process whose peers stopped reading (their windows closed)."""
    pairs = [connected_pair() for _ in range(3)]
    try:
        for client, _ in pairs:
            fill(client)
        time.sleep(1)
        yield pairs
    finally:
        for client, server in pairs:
            client.close()
            server.close()


def ss_stalled(before: dict, after: dict) -> int:
    """ss: connections with bytes unsent whose bytes_acked did not move from before to after."""
    return sum(1 for key, (notsent, acked) in after.items()
               if notsent > 0 and before.get(key, (0, -1))[1] == acked)


@requires_ss
def test_the_exporter_counts_stalled_connections_and_their_limits(stalled_pairs):
    from prometheus_client.parser import text_string_to_metric_families

    from sockdiag import export, exposition

    registry = export.registry(export.Collector([os.getpid()]))
    before = ss_unsent_and_acked(os.getpid())
    for _ in range(4):
        text = exposition.text_format(registry.collect()).decode()
        time.sleep(SAMPLE_S)
    after = ss_unsent_and_acked(os.getpid())
    stalled = ss_stalled(before, after)
    assert stalled >= 3
    samples = {(s.name, s.labels.get("limit")): s.value
               for family in text_string_to_metric_families(text) for s in family.samples
               if s.labels.get("pid") == str(os.getpid())}
    assert samples["sockdiag_process_connections_stalled", None] == stalled
    assert samples["sockdiag_process_connections_limited", "receiver"] >= stalled
    # Stalled connections have no delay: the histogram counts the others only.
    assert samples["sockdiag_process_queue_delay_seconds_gcount", None] <= len(after) - stalled


@requires_ss
def test_top_counts_connections_by_limit_and_the_stalled_ones(stalled_pairs):
    from sockdiag.accounting import TrafficAccountant

    with TrafficAccountant(pids=[os.getpid()], closed_sockets=False) as accountant:
        before = ss_unsent_and_acked(os.getpid())
        for _ in range(3):
            time.sleep(SAMPLE_S * 2)
            sample = accountant.sample()
        after = ss_unsent_and_acked(os.getpid())
    [ours] = [row for row in sample.processes if row.pid == os.getpid()]
    stalled = ss_stalled(before, after)
    assert stalled >= 3
    assert ours.stalled == stalled
    assert ours.limited_receiver == sum(1 for notsent, _ in after.values() if notsent > 0)
    assert ours.limited_network == ours.limited_sender_buffer == 0  # every peer's window is full
