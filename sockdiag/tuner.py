"""TCP_NOTSENT_LOWAT as a time: keep a socket's unsent bytes worth ``target_ms``.

A fixed lowat in bytes is a different wait at every rate (16 KiB is 13 ms at
10 Mbit/s, 131 ms at 1 Mbit/s).  LowatTuner measures how fast the socket's
bytes drain and sets the limit to rate × target, within bounds, from
TCP_INFO read at most once per ``interval_s``.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Optional

from . import _platform
from ._common import TcpInfo
from ._exceptions import NotSupported, UnsuitableSocket
from ._validate import LOWAT_BYTES, LOWAT_TARGET_MS, SAMPLE_INTERVAL, TOLERANCE
from .recording import InstrumentedSocket, stream_socket

DEFAULT_MIN_BYTES = 4096
# tcp_wmem's default maximum: a larger limit could never be reached.
DEFAULT_MAX_BYTES = 4 << 20
# Intervals between updates the rate is averaged over: 250 ms at the
# default interval, several RTTs, so one burst or gap of ACKs moves it
# little, and a change shows within that many updates.
_RATE_WINDOW = 5


def _acked_bytes(info: TcpInfo) -> Optional[int]:
    """Bytes the peer acknowledged so far: Linux tcpi_bytes_acked; macOS the
    private struct's txbytes - retransmitted - unacked, else the public
    struct's txbytes - retransmitted (which counts unacked bytes too)."""
    if info.bytes_acked is not None:
        return info.bytes_acked
    if info.bytes_sent is not None and info.bytes_retrans is not None:
        return info.bytes_sent - info.bytes_retrans
    return None


def _has_queued_bytes(info: TcpInfo) -> bool:
    """Whether the socket holds bytes not yet acknowledged (unsent or in flight)."""
    if info.notsent_bytes is not None:  # Linux
        return bool(info.notsent_bytes or info.unacked_segs)
    return bool(info.send_buffer_bytes)  # macOS: tcpi_snd_sbbytes, unacked + unsent


class LowatTuner:
    """Keeps TCP_NOTSENT_LOWAT of a socket you own near drain rate × ``target_ms``.

    ``sock``: a connected TCP socket, an ``InstrumentedSocket`` (the tuner
    then runs after each of its sends), or an asyncio StreamWriter or
    transport (call ``start()`` on the loop).  The limit is kept within
    ``min_bytes``..``max_bytes``; a new limit is set only when rate × target
    leaves the band ``lowat_bytes / (1 + tolerance)``..``lowat_bytes × (1 +
    tolerance)`` (hysteresis: a noisy rate does not flap the option).

    The rate is the bytes the peer acknowledged per second over the last
    five updates (250 ms at the default ``interval_s``): the rate at which
    unsent bytes drain, which is what their wait depends on, whatever
    limits it (the path, congestion control, or a slow reader's receive
    window; the kernel's delivery-rate sample does not see the last).  While the socket holds nothing unacknowledged and
    nothing was acknowledged, the limit is left as it is (an idle socket
    tells nothing about the path).

    Cost: ``update()`` is one getsockopt(TCP_INFO) and, when the limit
    changes, one setsockopt; ``maybe_update()`` does that at most once per
    ``interval_s`` and otherwise only reads the clock.  Call
    ``maybe_update()`` from a write loop; see bench/bench_tuner.py for µs per
    update and updates per MB.

    Availability: Linux (tcpi_bytes_acked), macOS (TCP_NOTSENT_LOWAT exists
    there; the rate comes from tcp_info's txbytes - retransmitted - unacked,
    or tcp_connection_info's txbytes - retransmitted).  Raises
    UnsuitableSocket for a socket without TCP_INFO, NotSupported when the
    kernel gives no acknowledged-bytes count; ValueError, TypeError for
    numbers out of their ranges (target_ms 0.1 to 10,000, bytes 1 to 2**31 - 1,
    interval_s above 0 and at most a day, tolerance 0 to 10).
    """

    def __init__(self, sock: Any, target_ms: float = 20.0, min_bytes: int = DEFAULT_MIN_BYTES,
                 max_bytes: int = DEFAULT_MAX_BYTES, *, interval_s: float = 0.05,
                 tolerance: float = 0.25) -> None:
        target_ms = LOWAT_TARGET_MS.check(target_ms, "target_ms")
        min_bytes = LOWAT_BYTES.check(min_bytes, "min_bytes")
        max_bytes = LOWAT_BYTES.check(max_bytes, "max_bytes")
        if min_bytes > max_bytes:
            raise ValueError(f"min_bytes {min_bytes} is above max_bytes {max_bytes}")
        interval_s = SAMPLE_INTERVAL.check(interval_s, "interval_s")
        tolerance = TOLERANCE.check(tolerance, "tolerance")
        self._tcp_info = _platform.tcp_info
        self._set_notsent_lowat = _platform.set_notsent_lowat
        self._sock = sock if callable(getattr(sock, "fileno", None)) else stream_socket(sock)
        self.target_ms = target_ms
        self.min_bytes = min_bytes
        self.max_bytes = max_bytes
        self.interval_ns = round(interval_s * 1e9)
        self.tolerance = tolerance
        #: TCP_INFO reads so far, and how many of them changed the limit.
        self.updates = 0
        self.changes = 0
        #: The last rate measured, bytes per second; None before one is known.
        self.rate_bytes_per_s: Optional[float] = None
        self._samples: deque[tuple[int, int]] = deque(maxlen=_RATE_WINDOW + 1)
        self._next_update_ns = 0
        self._timer = None
        first = self._tcp_info(self._sock)
        if _acked_bytes(first) is None:
            raise NotSupported("this kernel's TCP_INFO has no acknowledged-bytes count")
        #: The TCP_NOTSENT_LOWAT this tuner set, in bytes.
        self.lowat_bytes = min_bytes
        self._set(min_bytes)
        if isinstance(sock, InstrumentedSocket):
            sock.after_send = self.maybe_update

    def _set(self, nbytes: int) -> None:
        self._set_notsent_lowat(self._sock, nbytes)
        self.lowat_bytes = nbytes

    def wanted_bytes(self, rate_bytes_per_s: float) -> int:
        """The limit for a rate: rate × target within min_bytes..max_bytes."""
        wanted = round(rate_bytes_per_s * self.target_ms / 1e3)
        return min(max(wanted, self.min_bytes), self.max_bytes)

    def update(self) -> int:
        """Read TCP_INFO, measure the rate, retune if it left the band; the limit in bytes."""
        now_ns = time.monotonic_ns()
        self._next_update_ns = now_ns + self.interval_ns
        info = self._tcp_info(self._sock)
        self.updates += 1
        acked = _acked_bytes(info)
        self._samples.append((now_ns, acked))
        first_ns, first_acked = self._samples[0]
        if now_ns == first_ns:
            return self.lowat_bytes
        if acked == first_acked and not _has_queued_bytes(info):
            return self.lowat_bytes  # idle: nothing to measure
        self.rate_bytes_per_s = (acked - first_acked) * 1e9 / (now_ns - first_ns)
        wanted = self.wanted_bytes(self.rate_bytes_per_s)
        band = 1 + self.tolerance
        if not self.lowat_bytes / band <= wanted <= self.lowat_bytes * band:
            self._set(wanted)
            self.changes += 1
        return self.lowat_bytes

    def maybe_update(self) -> int:
        """update() if interval_s has passed since the last one; the limit in bytes."""
        if time.monotonic_ns() >= self._next_update_ns:
            return self.update()
        return self.lowat_bytes

    def start(self) -> None:
        """Update every interval_s on the running asyncio loop, until stop() or the socket closes.

        Each update is a callback on the loop (no thread; a few µs).
        """
        import asyncio  # only here: importing it costs more than the rest of sockdiag

        loop = asyncio.get_running_loop()
        interval_s = self.interval_ns / 1e9

        def tick() -> None:
            try:
                self.update()
            except (UnsuitableSocket, OSError):
                self._timer = None  # the socket closed
                return
            self._timer = loop.call_later(interval_s, tick)

        self.stop()
        self._timer = loop.call_later(interval_s, tick)

    def stop(self) -> None:
        """Stop the updates start() scheduled (the limit stays as last set)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __repr__(self) -> str:
        rate = "unknown" if self.rate_bytes_per_s is None else f"{self.rate_bytes_per_s:.0f} B/s"
        return (f"<LowatTuner target {self.target_ms:g} ms, lowat {self.lowat_bytes} bytes, "
                f"rate {rate}, {self.updates} updates, {self.changes} changes>")

