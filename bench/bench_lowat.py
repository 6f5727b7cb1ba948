"""What the lowat benchmark's own measuring costs the sender it measures.

Every 10 ms the sender samples each flow (the send-buffer split plus
SO_MEMINFO's wmem_queued); each stamped write's two timestamps are decoded
from the error queue.  Both must stay far below the 10 ms tick.  Baseline:
the same sample through the pure-Python reference (fcntl.ioctl/getsockopt).

Run: pytest bench/bench_lowat.py   (the ratio table prints at the end)
"""

from __future__ import annotations

import socket
import struct

import sockdiag
from sockdiag import reference
from sockdiag.lowat import timestamps

from testsupport.benchmarks import per_call

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
