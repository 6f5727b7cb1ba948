"""What the lowat benchmark's own measuring costs the sender it measures.

Every 10 ms the sender samples each flow (the send-buffer split plus
SO_MEMINFO's wmem_queued); each stamped write's two timestamps are decoded
from the error queue.  Both must stay far below the 10 ms tick.  Baseline:
the same sample through the pure-Python reference (fcntl.ioctl/getsockopt).

The delay line's accuracy (ping against the delay asked) and packet-rate
ceiling (loss of a UDP flood through it) need root and print their figures.

Run: pytest bench/bench_lowat.py -s   (the ratio table prints at the end)
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import time

import pytest

import sockdiag
from sockdiag import reference
from sockdiag.lowat import available_ccs, timestamps, topology

from testsupport.benchmarks import per_call
from testsupport.netns_ping import ping_ms

requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="the delay line needs root")

CALLS_PER_ROUND = 2_000
SO_MEMINFO = 55
MEMINFO = struct.Struct("@9I")


def tick(split, sock):
    """One flow's 10 ms sample, as the sender takes it."""
    buffer = split(sock)
    memory = MEMINFO.unpack(sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, MEMINFO.size))[5]
    return buffer.unsent, buffer.unacked, memory


def test_tick_sockdiag(benchmark, full_connection, ratios):
    assert tick(sockdiag.send_buffer, full_connection)[0] > 0
    ratios.add("lowat 10 ms sample, one flow", "sockdiag.send_buffer + SO_MEMINFO",
               per_call(benchmark, tick, sockdiag.send_buffer, full_connection, iterations=CALLS_PER_ROUND))


def test_tick_reference(benchmark, full_connection, ratios):
    assert tick(reference.send_buffer, full_connection)[0] > 0
    ratios.add("lowat 10 ms sample, one flow", "pure-Python reference + SO_MEMINFO",
               per_call(benchmark, tick, reference.send_buffer, full_connection, iterations=CALLS_PER_ROUND))


def test_decode_timestamp(benchmark, ratios):
    ancdata = [
        (socket.SOL_SOCKET, timestamps.SCM_TIMESTAMPING,
         struct.pack("@llllll", 1_700_000_000, 5, 0, 0, 0, 0)),
        (socket.IPPROTO_IP, 11, struct.pack("@IBBBBII", 42, 4, 0, 0, 0, 2, 4095) + b"\0" * 16),
    ]
    assert timestamps.decode_errqueue(ancdata).event == "ack"
    ratios.add("lowat timestamp", "decode_errqueue (one SCHED/ACK stamp)",
               per_call(benchmark, timestamps.decode_errqueue, ancdata, iterations=CALLS_PER_ROUND))


# --- the delay line (root; not timed per call: accuracy and packet rate) ----------

FLOOD = """
import socket, sys, time
if sys.argv[1] == "receive":
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 9999))
    sock.settimeout(1.0)
    count = 0
    try:
        while True:
            sock.recv(2048)
            count += 1
    except socket.timeout:
        print(count)
else:
    rate, seconds = float(sys.argv[3]), float(sys.argv[4])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start, sent = time.monotonic(), 0
    while (elapsed := time.monotonic() - start) < seconds:
        while sent < int(elapsed * rate):
            sock.sendto(b"x" * 40, (sys.argv[2], 9999))
            sent += 1
        time.sleep(0.0005)
    print(sent)
"""


def _in(namespace, *args):
    return ["ip", "netns", "exec", namespace, sys.executable, "-c", *args]


@requires_root
def test_delay_line_accuracy():
    """ICMP echo across the path (the reply comes through the line) against the delay asked."""
    for delay_ms in (10, 40):
        with topology.open_path([10_000_000], 50_000, delay_ms * 1000) as path:
            if path.info.delay_via != "tun delay line":
                pytest.skip(f"the delay comes from {path.info.delay_via}")
            rtts = sorted(ping_ms(path.info.namespaces[0], topology._RECEIVER_ADDRESS, 30))
        print(f"\ndelay line, {delay_ms} ms asked: RTT min {rtts[0]:.2f}, "
              f"median {statistics.median(rtts):.2f}, max {rtts[-1]:.2f} ms")
        assert delay_ms <= rtts[0] and statistics.median(rtts) < delay_ms + 2, rtts


@requires_root
def test_delay_line_ceiling():
    """UDP from the receiver's namespace to the sender's, through the line, 2 s per rate."""
    with topology.open_path([10_000_000], 50_000, 40_000) as path:
        if path.info.delay_via != "tun delay line":
            pytest.skip(f"the delay comes from {path.info.delay_via}")
        sender_ns, _, receiver_ns = path.info.namespaces
        for rate in (5_000, 10_000, 20_000, 50_000):
            receiver = subprocess.Popen(_in(sender_ns, FLOOD, "receive"), stdout=subprocess.PIPE,
                                        text=True)
            time.sleep(0.3)
            sent = int(subprocess.run(_in(receiver_ns, FLOOD, "send", "10.250.1.1", str(rate), "2"),
                                      capture_output=True, text=True, check=True).stdout)
            received = int(receiver.communicate(timeout=30)[0])
            print(f"\ndelay line at {rate:,} packets/s: {sent:,} sent, {received:,} received, "
                  f"{100 * (1 - received / sent):.1f}% lost")


@requires_root
@pytest.mark.skipif("bbr" not in available_ccs(), reason="the published effect is with bbr; this kernel lacks it")
def test_shaped_run_effect():
    """The published effect through the shaped path (10 Mbit/s, 20 ms): a
    16 KiB lowat cuts the median write-to-ACK latency at least 5x (about 14x
    here) and keeps 90% of the goodput of no lowat."""
    done = subprocess.run([sys.executable, "-c", "from sockdiag.cli import main; main()", "bench",
                           "lowat", "--lowat", "off", "--lowat", "16k", "--cc", "bbr", "--repeat", "1",
                           "--duration", "5", "--warmup", "1", "--json"],
                          capture_output=True, text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    off, small = json.loads(done.stdout)["results"]
    print(f"\nlowat 16k vs off: latency p50 {small['latency_p50_ms']:.1f} vs "
          f"{off['latency_p50_ms']:.1f} ms, goodput {small['throughput_bps'] / 1e6:.2f} vs "
          f"{off['throughput_bps'] / 1e6:.2f} Mbit/s")
    assert small["latency_p50_ms"] * 5 < off["latency_p50_ms"]
    assert small["throughput_bps"] > 0.9 * off["throughput_bps"]
