"""What the lowat benchmark's own measuring costs the sender it measures.

Every 10 ms the sender samples each flow (sockdiag.send_buffer plus
SO_MEMINFO); each stamped write's two timestamps are decoded from the error
queue.  Both must stay far below the 10 ms tick.  Baselines: the same sample
taken with Python's own fcntl.ioctl / getsockopt.

    pytest bench/bench_lowat.py
"""

from __future__ import annotations

import fcntl
import socket
import struct
import sys
from pathlib import Path

import pytest

import sockdiag
from sockdiag.lowat import timestamps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import connected_pair, fill  # noqa: E402

SIOCOUTQ = 0x5411
SIOCOUTQNSD = 0x894B
SO_MEMINFO = 55
MEMINFO = struct.Struct("@9I")


@pytest.fixture(scope="module")
def filled():
    client, server = connected_pair()
    fill(client, limit=1 << 20)
    yield client
    client.close()
    server.close()


def sample_with_sockdiag(sock):
    split = sockdiag.send_buffer(sock)
    memory = MEMINFO.unpack(sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, MEMINFO.size))[5]
    return split.unsent, split.unacked, memory


def sample_with_python(sock):
    unsent = struct.unpack("i", fcntl.ioctl(sock, SIOCOUTQNSD, b"\0" * 4))[0]
    queued = struct.unpack("i", fcntl.ioctl(sock, SIOCOUTQ, b"\0" * 4))[0]
    memory = MEMINFO.unpack(sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, MEMINFO.size))[5]
    return unsent, queued - unsent, memory


def test_sample_tick_sockdiag(benchmark, filled):
    unsent, unacked, memory = benchmark(sample_with_sockdiag, filled)
    assert unsent > 0 and memory > 0


def test_sample_tick_python_baseline(benchmark, filled):
    unsent, _, memory = benchmark(sample_with_python, filled)
    assert unsent > 0 and memory > 0


def test_decode_timestamp(benchmark):
    ancdata = [
        (socket.SOL_SOCKET, timestamps.SCM_TIMESTAMPING,
         struct.pack("@llllll", 1_700_000_000, 5, 0, 0, 0, 0)),
        (socket.IPPROTO_IP, 11, struct.pack("@IBBBBII", 42, 4, 0, 0, 0, 2, 4095) + b"\0" * 16),
    ]
    stamp = benchmark(timestamps.decode_errqueue, ancdata)
    assert stamp.event == "ack"
