"""`sockdiag bench rcvbuf`: real UDP runs on loopback, checked against the kernel's
own counts (Udp RcvbufErrors in a namespace of the test's own, ss), the
kernel's rule for SO_RCVBUF, and the queueing the bursts must produce.

Runs are short (well under a second each) and bounded in datagrams.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from sockdiag import rcvbuf
from sockdiag.rcvbuf import RcvbufConfig, RcvbufResult

from conftest import IS_ROOT, requires_linux, requires_root, requires_ss

pytestmark = requires_linux

CLI = [sys.executable, "-c", "from sockdiag.cli import main; main()", "bench", "rcvbuf"]


def rmem_max() -> int:
    with open("/proc/sys/net/core/rmem_max") as f:
        return int(f.read())


def config(**changes) -> RcvbufConfig:
    values = dict(rcvbufs=(64 << 10,), rate_bps=50_000_000, datagram_size=1200, burst=256,
                  service_us=50, duration_s=0.3)
    return RcvbufConfig(**{**values, **changes})


# In a network namespace of its own, whose Udp counters only this run moves.
IN_NAMESPACE = r"""
import json, subprocess, sys

def udp_counters():
    with open("/proc/net/snmp") as f:
        lines = [line.split() for line in f if line.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
before = udp_counters()
run = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=True)
after = udp_counters()
print(json.dumps({"bench": json.loads(run.stdout),
                  "counters": {name: after[name] - before[name] for name in after}}))
"""


@requires_root
def test_drops_equal_the_namespace_s_rcvbuferrors_and_sent_minus_read():
    run = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", IN_NAMESPACE, *CLI,
         "--rcvbuf", "64k", "--rcvbuf", "2m", "--duration", "0.3", "--json"],
        capture_output=True, text=True, timeout=60, check=True)
    found = json.loads(run.stdout)
    small, large = found["bench"]["results"]
    counters = found["counters"]
    assert small["kernel_drops"] > 0
    for result in (small, large):
        assert result["kernel_drops"] == result["sent"] - result["received"]
        assert result["drop_pct"] == pytest.approx(
            100 * result["kernel_drops"] / result["sent"])
    assert counters["RcvbufErrors"] == small["kernel_drops"] + large["kernel_drops"]
    assert counters["InDatagrams"] == small["received"] + large["received"]


def test_granted_follows_the_kernel_s_rule_and_ss_sees_it():
    """SO_RCVBUF is doubled and silently capped at net.core.rmem_max."""
    cap = rmem_max()
    result, = rcvbuf.benchmark(config(rcvbufs=(cap + (1 << 20),))).results
    assert (result.granted, result.capped, result.via) == (2 * cap, True, "SO_RCVBUF")
    result, = rcvbuf.benchmark(config(rcvbufs=(96 << 10,))).results
    assert (result.granted, result.capped) == (2 * (96 << 10), False)


@requires_ss
def test_set_rcvbuf_is_what_ss_shows():
    cap = rmem_max()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        via = rcvbuf.set_rcvbuf(sock, cap + 4096, force=IS_ROOT)
        port = sock.getsockname()[1]
        shown = subprocess.run(["ss", "-H", "-uamn", f"sport = :{port}"],
                               capture_output=True, text=True, check=True).stdout
        rb = int(re.search(r"\brb(\d+)", shown).group(1))
        assert rb == sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert (via, rb) == (("SO_RCVBUFFORCE", 2 * (cap + 4096)) if IS_ROOT
                             else ("SO_RCVBUF", 2 * cap))


@requires_root
def test_force_lifts_the_cap_as_root():
    cap = rmem_max()
    report = rcvbuf.benchmark(config(rcvbufs=(cap + (1 << 20),), force=True))
    result, = report.results
    assert (result.granted, result.capped, result.via) == (
        2 * (cap + (1 << 20)), False, "SO_RCVBUFFORCE")
    assert report.notices == ()


def test_force_without_the_privilege_is_a_notice_and_so_rcvbuf():
    # Root drops to nobody for the run; anyone else is already without the privilege.
    unprivileged = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if IS_ROOT else []
    run = subprocess.run([*unprivileged, *CLI,
                          "--rcvbuf", "8m", "--duration", "0.2", "--force", "--json"],
                         capture_output=True, text=True, timeout=60, cwd="/")
    assert run.returncode == 0, run.stderr
    assert "SO_RCVBUFFORCE needs root" in run.stderr
    result, = json.loads(run.stdout)["results"]
    assert result["via"] == "SO_RCVBUF"
    assert result["granted"] == 2 * min(8 << 20, rmem_max())


def test_time_in_the_queue_is_the_wait_behind_the_burst():
    """One burst of 40 into an empty queue, 2 ms each: the k-th datagram read
    waits about k x 2 ms (more when the machine preempts the reader)."""
    report = rcvbuf.benchmark(config(rcvbufs=(1 << 20,), rate_bps=500_000, burst=40,
                                     service_us=2000, duration_s=0.2))
    result, = report.results
    assert (result.sent, result.received, result.kernel_drops) == (40, 40, 0)
    assert 39 * 2.0 <= result.queue_max_ms
    assert 19 * 2.0 <= result.queue_p50_ms <= 21 * result.service_mean_us / 1000 + 50
    assert result.queue_p50_ms < result.queue_p99_ms <= result.queue_max_ms
    assert 2000 <= result.service_mean_us <= 2000 + 1000 * result.stall_max_ms
    # The last read waited for every service before it, stalls included.
    assert result.queue_max_ms <= 39 * result.service_mean_us / 1000 + 50


def test_the_kernel_receive_stamp_falls_between_send_and_read():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        receiver.setsockopt(socket.SOL_SOCKET, rcvbuf.SO_TIMESTAMPNS, 1)
        receiver.bind(("127.0.0.1", 0))
        sender.connect(receiver.getsockname())
        sent_ns = time.time_ns()
        sender.send(b"x")
        time.sleep(0.05)
        _, ancillary, _, _ = receiver.recvmsg(16, socket.CMSG_SPACE(16))
        read_ns = time.time_ns()
    stamp_ns = rcvbuf._kernel_stamp_ns(ancillary)
    assert sent_ns <= stamp_ns <= read_ns - 50_000_000


def test_bytes_per_datagram_is_what_a_queued_datagram_takes():
    """The first burst's memory per datagram equals /proc/net/udp's rx_queue
    over the datagrams queued, measured on a socket of the test's own."""
    result, = rcvbuf.benchmark(config(rcvbufs=(1 << 20,), burst=20)).results
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        receiver.bind(("127.0.0.1", 0))
        sender.connect(receiver.getsockname())
        for _ in range(20):
            sender.send(bytes(1200))
        inode = os.fstat(receiver.fileno()).st_ino
        with open("/proc/net/udp") as f:
            row = next(line.split() for line in f if line.split()[9:10] == [str(inode)])
        rx_queue = int(row[4].split(":")[1], 16)
    assert result.bytes_per_datagram == rx_queue // 20


def result(requested, granted, drop_pct, capped=False, via="SO_RCVBUF", per_datagram=2304):
    return RcvbufResult(requested=requested, granted=granted, via=via, capped=capped, sent=1000,
                        received=round(1000 - 10 * drop_pct), kernel_drops=round(10 * drop_pct),
                        drop_pct=drop_pct, queue_p50_ms=1.0, queue_p99_ms=2.0, queue_max_ms=3.0,
                        bytes_per_datagram=per_datagram, service_mean_us=50.0,
                        stall_max_ms=0.1)


def test_recommendation_is_the_smallest_granted_size_within_the_tolerance():
    results = [result(4 << 20, 8 << 20, 0.0), result(1 << 20, 2 << 20, 0.05),
               result(64 << 10, 128 << 10, 30.0)]
    chosen = rcvbuf.recommend(results, rmem_max=4 << 20)
    assert (chosen.requested, chosen.granted, chosen.drop_pct, chosen.needs) == (
        1 << 20, 2 << 20, 0.05, None)
    # Capped: the request that gets the same is rmem_max.
    chosen = rcvbuf.recommend([result(8 << 20, 8 << 20, 0.0, capped=True)], rmem_max=4 << 20)
    assert (chosen.requested, chosen.needs) == (4 << 20, None)
    chosen = rcvbuf.recommend([result(8 << 20, 16 << 20, 0.0, via="SO_RCVBUFFORCE")],
                              rmem_max=4 << 20)
    assert chosen.needs.startswith(f"sysctl -w net.core.rmem_max={8 << 20}")
    assert rcvbuf.recommend([result(1 << 20, 2 << 20, 0.2)], rmem_max=4 << 20).requested is None


def test_a_size_that_dropped_during_a_stall_gets_a_notice():
    cfg = config(burst=256, service_us=50)  # a burst takes 12.8 ms to serve
    stalled = result(1 << 20, 2 << 20, 5.0).replace(stall_max_ms=200.0)
    quiet = result(64 << 10, 128 << 10, 70.0).replace(stall_max_ms=5.0)
    undropped = result(4 << 20, 8 << 20, 0.0).replace(stall_max_ms=200.0)
    notices = rcvbuf.stall_notices([stalled, quiet, undropped], cfg)
    assert notices == ["at SO_RCVBUF 1m the bench stalled 200 ms (a burst takes 12.8 ms to "
                       "serve): its drops include what arrived meanwhile; a busy machine, "
                       "rerun to tell"]


def test_quic_go_fit_counts_datagrams_in_the_granted_buffer():
    cfg = config(rate_bps=48_000_000, datagram_size=1200, burst=256)  # 5000 datagrams/s
    fit = rcvbuf.quic_go_fit([result(1 << 20, 2 << 20, 0.0)], cfg, rmem_max=4 << 20,
                             force=False)
    assert (fit.granted, fit.datagrams) == (8 << 20, (8 << 20) // 2304)
    assert fit.payload_bytes == fit.datagrams * 1200
    assert fit.stall_ms == pytest.approx(1000 * fit.datagrams / 5000)
    assert rcvbuf.quic_go_fit([], cfg, 4 << 20, force=True).granted == 15_000_000


def test_cli_table_json_and_plot(tmp_path):
    png = tmp_path / "rcvbuf.png"
    args = ["--rcvbuf", "64k", "--rcvbuf", "1m", "--duration", "0.3"]
    run = subprocess.run([*CLI, *args, "--json", "--plot", str(png)], capture_output=True,
                         text=True, timeout=60, check=True)
    document = json.loads(run.stdout)  # one object
    assert set(document) == {"kernel", "rmem_max", "rmem_default", "config", "notices",
                             "results", "recommendation", "quic_go"}
    assert [r["requested"] for r in document["results"]] == [64 << 10, 1 << 20]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=True)
    assert "SO_RCVBUF" in run.stdout.splitlines()[2] and "recommendation: SO_RCVBUF" in run.stdout
    assert "quic-go's 7.5 MB" in run.stdout


@pytest.mark.parametrize("args", [["--rcvbuf", "12"], ["--burst", "0"], ["--service", "5x"],
                                  ["--rate", "fast"], ["--duration", "0.01"],
                                  ["--plot", "/nonexistent/rcvbuf.png"]])
def test_bad_input_is_one_line_and_exit_2(args):
    run = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and run.stdout == ""


def test_a_failed_write_is_one_line_and_non_zero():
    with open("/dev/full", "w") as full:
        run = subprocess.run([*CLI, "--rcvbuf", "64k", "--duration", "0.2", "--json"],
                             stdout=full, stderr=subprocess.PIPE, text=True, timeout=30)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == ["sockdiag: cannot write the output: "
                                               "No space left on device"]


def test_sigterm_ends_a_run_cleanly():
    child = subprocess.Popen([*CLI, "--rcvbuf", "1m", "--duration", "30"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=10)
    assert child.returncode != 0 and "Traceback" not in err and out == ""
