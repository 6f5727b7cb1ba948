"""How fast each socket's queue really drains, and why its bytes wait, across samples.

One look at a socket (process_sockets) can only judge the kernel's delivery
rate (``_common.snapshot_drain``).  Views that look again and again (watch,
top, export) keep a DrainTracker: per socket, the rate at which its bytes
were acknowledged over the last few seconds, the
seconds it has been stalled, and which of the kernel's chrono counters grew
(docs/queue-delay.md has the rules, each with the field it reads).
"""

from __future__ import annotations

import dataclasses
from typing import Hashable, Iterable, Optional

from ._common import SocketInfo, TcpInfo
from ._fast import socket_with_drain

# The drain rate is the bytes acknowledged over the last WINDOW_S seconds of
# looks: long enough to average a reader's small bursts and pauses, short
# enough to follow a change of pace (and to forget a connection's first burst)
# within a few seconds.
WINDOW_S = 3.0
# Acknowledged bytes are counted over at least this long before their rate
# stands in for the kernel's delivery rate.
MIN_WINDOW_S = 0.5
# A queue counts as stalled once nothing has been acknowledged for this long
# (or for two round trips, if longer): delayed ACKs alone wait up to 200 ms.
MIN_STALL_S = 0.25


@dataclasses.dataclass(slots=True)
class _History:
    time_s: float
    bytes_acked: int
    unsent: int
    chrono: Optional[tuple[int, int, int]]  # busy, rwnd-limited, sndbuf-limited (us)
    # (time_s, bytes_acked) of earlier looks, oldest first: the newest one at
    # least WINDOW_S old, and later ones at most 16 to a window.
    earlier: tuple[tuple[float, int], ...] = ()
    stalled_since: Optional[float] = None


def _chrono(tcp: TcpInfo) -> Optional[tuple[int, int, int]]:
    if tcp.busy_time_us is None or tcp.rwnd_limited_us is None or tcp.sndbuf_limited_us is None:
        return None
    return tcp.busy_time_us, tcp.rwnd_limited_us, tcp.sndbuf_limited_us


def interval_limit(unsent: int, snapshot_limit: Optional[str], probes: Optional[int],
                   before: Optional[tuple[int, int, int]], after: Optional[tuple[int, int, int]]
                   ) -> Optional[str]:
    """Why bytes waited between two looks, from the growth of the chrono counters.

    Zero-window probes now mean the receiver.  Otherwise the largest of the
    receiver-limited time, the sender-limited time and the rest of the busy
    time wins.  The rest is the network's while bytes are unsent; with
    nothing unsent the snapshot tells the writer ("application") from a
    writer blocked on a full buffer ("sender_buffer": the kernel's own
    counter misses a buffer too small to fill the path).  Without the
    counters (Linux < 4.10, macOS), or when nothing was busy, the snapshot's
    verdict stands.
    """
    if unsent > 0 and (probes or 0) > 0:
        return "receiver"
    if before is None or after is None:
        return snapshot_limit
    busy, rwnd, sndbuf = (max(new - old, 0) for new, old in zip(after, before))
    if busy == 0:
        return snapshot_limit
    rest = max(busy - rwnd - sndbuf, 0)
    _, limit = max((rwnd, "receiver"), (sndbuf, "sender_buffer"),
                   (rest, "network" if unsent > 0 else snapshot_limit), key=lambda pair: pair[0])
    return limit


class DrainTracker:
    """Per-socket drain estimates across the samples of one view.

    ``update(sockets, now_s)`` returns the sockets with ``queue_delay_s``,
    ``queue_delay_basis``, ``limited_by`` and ``stalled_s`` from their history
    (the records of sockets whose values do not change are returned as they
    are).  Sockets not seen in a sample are forgotten.
    """

    def __init__(self, window_s: float = WINDOW_S, min_window_s: float = MIN_WINDOW_S) -> None:
        self._window_s = window_s
        self._min_window_s = min_window_s
        self._history: dict[Hashable, _History] = {}

    def update(self, sockets: Iterable[SocketInfo], now_s: float) -> tuple[SocketInfo, ...]:
        """sockets (one look, taken at time.monotonic() now_s) with their drain across looks."""
        seen: dict[Hashable, _History] = {}
        out = []
        for s in sockets:
            key = s.inode if s.inode is not None else ("fd", s.fd)
            tcp = s.tcp
            if tcp is None or tcp.bytes_acked is None or s.unsent is None:
                out.append(s)
                continue
            old = self._history.get(key)
            new = _History(now_s, tcp.bytes_acked, s.unsent, _chrono(tcp))
            seen[key] = new
            if old is None or now_s <= old.time_s or tcp.bytes_acked < old.bytes_acked:
                out.append(s)
                continue
            out.append(self._refined(s, tcp, old, new))
        self._history = seen
        return tuple(out)

    def _refined(self, s: SocketInfo, tcp: TcpInfo, old: _History, new: _History) -> SocketInfo:
        acked = new.bytes_acked - old.bytes_acked
        earlier = old.earlier
        # Looks closer together than a sixteenth of the window are not kept:
        # the history stays short however often a view looks.
        if not earlier or old.time_s - earlier[-1][0] >= self._window_s / 16:
            earlier += ((old.time_s, old.bytes_acked),)
        cutoff = new.time_s - self._window_s
        while len(earlier) > 1 and earlier[1][0] <= cutoff:
            earlier = earlier[1:]
        new.earlier = earlier
        since_s, acked_then = earlier[0]
        window_s = new.time_s - since_s
        rate = (new.bytes_acked - acked_then) / window_s
        unsent = new.unsent
        stalled_s = 0.0
        if unsent > 0 and old.unsent > 0 and acked == 0:
            new.stalled_since = old.stalled_since if old.stalled_since is not None else old.time_s
            stalled_s = new.time_s - new.stalled_since
        limited_by = interval_limit(unsent, s.limited_by, tcp.probes, old.chrono, new.chrono)
        stall_floor = max(MIN_STALL_S, 2 * (tcp.rtt_us or 0) / 1e6)
        if unsent == 0:
            delay, basis = 0.0, "empty"
        elif stalled_s >= stall_floor:
            delay, basis = None, "stalled"
        elif window_s < self._min_window_s:
            delay, basis = s.queue_delay_s, s.queue_delay_basis
        elif rate > 0:
            delay, basis = unsent / rate, "acked_rate"
        else:
            delay, basis = None, "no_rate"
        if (delay, basis, limited_by, stalled_s) == (s.queue_delay_s, s.queue_delay_basis, s.limited_by,
                                                     s.stalled_s):
            return s
        return socket_with_drain(s, delay, basis, limited_by, stalled_s)


def is_stalled(s: SocketInfo) -> bool:
    """True while s's queue is stalled: bytes unsent, nothing acknowledged (DrainTracker)."""
    return s.queue_delay_basis == "stalled"
