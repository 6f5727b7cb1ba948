"""A user-space delay line, for a base RTT on kernels without netem.

A TUN device in the router's namespace; policy routing sends what arrives
from the receiver (the ACK path) into it.  A forked worker reads each
packet, holds it for the delay and writes it back into the TUN device,
from where the router forwards it to the sender.  The device exists only
while the worker holds it open: it goes with the worker (killed with the
run, PR_SET_PDEATHSIG) and with the namespace, so nothing outlives a run.

Accuracy and ceiling (bench/bench_lowat.py, test_delay_line_accuracy and
test_delay_line_ceiling): the RTT is the delay plus about 0.4 ms; one
packet costs a read, a write and a select, so the line forwards a bounded
number of packets per second, CEILING_PACKETS_PER_S with a margin for a
loaded machine.  Rates whose ACKs could exceed it are refused.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import time
from collections import deque

DEVICE = "sdlw-delay"
# Policy-routing table of the router namespace that leads into the device.
ROUTE_TABLE = "100"
# bench/bench_lowat.py::test_delay_line_ceiling on this 2-core machine:
# no loss at 10,000 packets/s, 2% at 20,000, half lost at 50,000.  Below
# the lossless figure, with room for the sender and receiver of the bench.
CEILING_PACKETS_PER_S = 8_000
# Worst case for the ACK path: one ACK per full-sized data segment.
_SEGMENT_BYTES = 1448
# Packets held at once; beyond that the line drops, as a full queue does.
_MAX_HELD = 100_000
# Above normal tasks, below the kernel's own real-time threads (50).
_REALTIME_PRIORITY = 10
_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
_READ_SIZE = 65536


def packets_per_s(rate_bps: int) -> float:
    """The ACKs per second a bulk flow at rate_bps can send through the line, at most."""
    return rate_bps / (8 * _SEGMENT_BYTES)


def max_rate_bps() -> int:
    """The highest bottleneck rate the line keeps up with (CEILING_PACKETS_PER_S)."""
    return CEILING_PACKETS_PER_S * 8 * _SEGMENT_BYTES


def open_device(name: str = DEVICE) -> int:
    """Create TUN device name in the caller's network namespace; its fd (non-blocking).

    The device goes away when the fd is closed (it is not made persistent).
    """
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TUN | _IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def run_realtime() -> bool:
    """Move the calling process to SCHED_FIFO; whether that worked.

    Under the normal scheduler a busy machine (the bench's sender and
    receiver share it) can leave the line waiting for a CPU: the packets
    that came meanwhile are then held too long and leave together, ACKs
    bunched as no real path bunches them.  The line blocks in select()
    between packets, so it takes a small share of a core (bounded by the
    ceiling).
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(_REALTIME_PRIORITY))
    except OSError:
        return False
    return True


def forward(fd: int, delay_ns: int) -> None:
    """Hold every packet read from fd for delay_ns, then write it back; never returns.

    select() takes its timeout in microseconds (poll and epoll round to
    milliseconds), so a packet leaves within tens of µs of its due time on
    an idle machine.
    """
    held: deque = deque()
    while True:
        timeout = None if not held else max(0.0, (held[0][0] - time.monotonic_ns()) / 1e9)
        readable, _, _ = select.select([fd], [], [], timeout)
        if readable:
            due = time.monotonic_ns() + delay_ns
            while True:
                try:
                    packet = os.read(fd, _READ_SIZE)
                except BlockingIOError:
                    break
                if len(held) < _MAX_HELD:  # else dropped, as by a full queue
                    held.append((due, packet))
        now = time.monotonic_ns()
        while held and held[0][0] <= now:
            try:
                os.write(fd, held.popleft()[1])
            except OSError:
                pass  # the stack refused it (as a full queue would drop it)
