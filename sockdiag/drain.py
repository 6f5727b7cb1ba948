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
MIN_WINDOW_S = 0.1
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
    busy = max(after[0] - before[0], 0)
    if busy == 0:
        return snapshot_limit
    rwnd = max(after[1] - before[1], 0)
    sndbuf = max(after[2] - before[2], 0)
    rest = max(busy - rwnd - sndbuf, 0)
    # Ties go to the receiver, then to the sender's buffer.  Written out: a
    # max() over pairs cost a recording's sample a microsecond.
    if rwnd >= sndbuf and rwnd >= rest:
        return "receiver"
    if sndbuf >= rest:
        return "sender_buffer"
    return "network" if unsent > 0 else snapshot_limit


class DrainTracker:
    """Drain estimates across looks: per socket of a view, or of one recorded socket.

    ``update(sockets, now_s)`` returns the sockets with ``queue_delay_s``,
    ``queue_delay_basis``, ``limited_by`` and ``stalled_s`` from their history
    (the structs of sockets whose values do not change are returned as they
    are); sockets not in a look are forgotten.  ``drain()`` is the same for
    one socket's numbers.
    """

    def __init__(self, window_s: float = WINDOW_S, min_window_s: float = MIN_WINDOW_S) -> None:
        self._window_s = window_s
        self._min_window_s = min_window_s
        self._history: dict[Hashable, _History] = {}

    def update(self, sockets: Iterable[SocketInfo], now_s: float) -> tuple[SocketInfo, ...]:
        """sockets (one look, taken at time.monotonic() now_s) with their drain across looks."""
        out = []
        seen = set()
        for s in sockets:
            if not s.unsent:
                # Nothing waits (most sockets): one look's verdict is the whole
                # answer (application, or a full buffer), and no history is kept.
                out.append(s)
                continue
            key = s.inode if s.inode is not None else ("fd", s.fd)
            seen.add(key)
            found = self.drain(key, now_s, s.unsent, s.tcp,
                               (s.queue_delay_s, s.queue_delay_basis, s.limited_by))
            if found is None or found == (s.queue_delay_s, s.queue_delay_basis, s.limited_by, s.stalled_s):
                out.append(s)
            else:
                out.append(socket_with_drain(s, *found))
        for key in self._history.keys() - seen:
            del self._history[key]
        return tuple(out)

    def drain(self, key: Hashable, now_s: float, unsent: Optional[int], tcp: Optional[TcpInfo],
              snapshot: tuple[Optional[float], Optional[str], Optional[str]]
              ) -> Optional[tuple[Optional[float], Optional[str], Optional[str], float]]:
        """(queue_delay_s, queue_delay_basis, limited_by, stalled_s) of the socket key at now_s,
        given its unsent bytes, its TcpInfo and the (queue_delay_s, basis, limited_by)
        of this look alone; None while there is no earlier look to judge it by."""
        if tcp is None or tcp.bytes_acked is None or unsent is None:
            return None
        old = self._history.get(key)
        new = self._history[key] = _History(now_s, tcp.bytes_acked, unsent, _chrono(tcp))
        if old is None or now_s <= old.time_s or tcp.bytes_acked < old.bytes_acked:
            return None
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
        stalled_s = 0.0
        if unsent > 0 and old.unsent > 0 and acked == 0:
            new.stalled_since = old.stalled_since if old.stalled_since is not None else old.time_s
            stalled_s = new.time_s - new.stalled_since
        snapshot_delay, snapshot_basis, snapshot_limit = snapshot
        limited_by = interval_limit(unsent, snapshot_limit, tcp.probes, old.chrono, new.chrono)
        stall_floor = max(MIN_STALL_S, 2 * (tcp.rtt_us or 0) / 1e6)
        if unsent == 0:
            delay, basis = 0.0, "empty"
        elif stalled_s >= stall_floor:
            delay, basis = None, "stalled"
        elif window_s < self._min_window_s:
            delay, basis = snapshot_delay, snapshot_basis
        elif rate > 0:
            delay, basis = unsent / rate, "acked_rate"
        else:
            delay, basis = None, "no_rate"
        return delay, basis, limited_by, stalled_s


def is_stalled(s: SocketInfo) -> bool:
    """True while s's queue is stalled: bytes unsent, nothing acknowledged (DrainTracker)."""
    return s.queue_delay_basis == "stalled"
