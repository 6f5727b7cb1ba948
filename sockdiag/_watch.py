"""The watch model: typed samples of a process's sockets, their rates, their
order, and the rates of interfaces between two samples.

``sockdiag watch`` and ``sockdiag demo`` draw these (sockdiag.views.watch),
``sockdiag ifstat`` the interfaces' rates.  Rates are computed from two
samples, so the first sample has none (never a fake zero).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable, Mapping, Optional, Sequence

from . import _platform
from ._common import FrozenStruct, InterfaceCounters, InterfaceRates, SocketInfo
from .fields import SOCKET_FIELDS, sorted_items


def known_sum(values: Sequence[Optional[float]]) -> Optional[float]:
    """The sum of the known values; None when every one is unknown (0 for none at all)."""
    known = [v for v in values if v is not None]
    return sum(known) if known or not values else None


def growth(old: Optional[int], new: Optional[int]) -> Optional[int]:
    """How much a kernel counter grew from old to new; None when either is
    unknown or it went backwards (the counter was reset: a re-created
    interface, a disconnected socket), never a negative or fake 0."""
    return None if old is None or new is None or new < old else new - old


class ProcessSample(FrozenStruct):
    """One look at the TCP sockets of a process, or of a cgroup.

    ``time``: seconds since the epoch; ``monotonic_s``: time.monotonic() of the
    look, for rates.  ``sockets`` are the ones kept by the view's filters,
    ``held`` how many the process (or cgroup) holds in the states asked for,
    before the port filter (None: not counted, as in a replay).
    For a cgroup (Linux) ``pid`` is None, ``name`` the cgroup's readable
    name, ``cgroup`` its path under the cgroup2 mount and ``pids`` the
    processes in it at the look.
    """

    time: float
    monotonic_s: float
    pid: Optional[int]
    name: Optional[str]
    sockets: tuple[SocketInfo, ...]
    cgroup: Optional[str] = None
    pids: tuple[int, ...] = ()
    held: Optional[int] = None

    def totals(self) -> tuple[int, int]:
        """(unacked, unsent) summed over the sockets, in bytes."""
        return (sum(s.unacked or 0 for s in self.sockets),
                sum(s.unsent or 0 for s in self.sockets))


class SocketRates(FrozenStruct):
    """Rates between two samples: bytes/s, and drops/s.

    ``send_bytes_per_s``: from tcpi_bytes_sent (retransmissions included);
    ``ack_bytes_per_s``: from tcpi_bytes_acked (TCP); ``drops_per_s``: from
    the kernel's drop count of the socket (any kind).  None where a sample
    lacks the counter (tcpi_bytes_sent before Linux 4.19, drops on macOS),
    never a fake 0.
    """

    send_bytes_per_s: Optional[float]
    ack_bytes_per_s: Optional[float]
    drops_per_s: Optional[float] = None


def socket_rates(sample: ProcessSample, previous: Optional[ProcessSample]) -> dict[int, SocketRates]:
    """Rates of each socket present in both samples, by inode; empty for the first sample."""
    if previous is None or sample.monotonic_s <= previous.monotonic_s:
        return {}
    seconds = sample.monotonic_s - previous.monotonic_s
    before = {s.inode: s for s in previous.sockets}

    def rate(new: Optional[int], old: Optional[int]) -> Optional[float]:
        grown = growth(old, new)
        return None if grown is None else grown / seconds

    found = {}
    for s in sample.sockets:
        old = before.get(s.inode)
        if old is not None:
            tcp, old_tcp = s.tcp, old.tcp
            both = tcp is not None and old_tcp is not None
            found[s.inode] = SocketRates(
                send_bytes_per_s=rate(tcp.bytes_sent, old_tcp.bytes_sent) if both else None,
                ack_bytes_per_s=rate(tcp.bytes_acked, old_tcp.bytes_acked) if both else None,
                drops_per_s=rate(s.drops, old.drops))
    return found


def total_rates(sample: ProcessSample, previous: Optional[ProcessSample],
                per_socket: dict[int, SocketRates]) -> Optional[SocketRates]:
    """The process's rates from socket_rates' result; None for the first sample."""
    if previous is None or sample.monotonic_s <= previous.monotonic_s:
        return None

    return SocketRates(*(known_sum([getattr(r, name) for r in per_socket.values()])
                         for name in ("send_bytes_per_s", "ack_bytes_per_s", "drops_per_s")))


def rates(sample: ProcessSample, previous: Optional[ProcessSample]) -> Optional[SocketRates]:
    """The process's rates (sums over the sockets in both samples); None for the first sample."""
    return total_rates(sample, previous, socket_rates(sample, previous))


def _with_ports(found: Sequence[SocketInfo], ports: Iterable[int]) -> tuple[SocketInfo, ...]:
    wanted = set(ports)
    if wanted:
        found = [s for s in found if s.local_port in wanted or s.remote_port in wanted]
    return tuple(found)


def take_sample(pid: int, name: Optional[str], states: Optional[Sequence[str]] = None,
                ports: Iterable[int] = (), kinds: Sequence[str] = ("tcp",)) -> ProcessSample:
    """Sample pid's sockets of kinds, in states (None: all) and with a local or
    remote port in ports."""
    found = _platform.process_sockets(pid, states, kinds)
    return ProcessSample(time=time.time(), monotonic_s=time.monotonic(), pid=pid, name=name,
                         sockets=_with_ports(found, ports), held=len(found))


def take_cgroup_sample(cgroup, states: Optional[Sequence[str]] = None, ports: Iterable[int] = (),
                       notice: Optional[Callable[[str], None]] = None,
                       kinds: Sequence[str] = ("tcp",)) -> ProcessSample:
    """Sample the sockets of a cgroup (sockdiag.cgroups.Cgroup; Linux), as
    take_sample; notice is told when the kernel cannot filter by cgroup."""
    from .cgroups import cgroup_pids

    found = _platform.cgroup_sockets(cgroup, states, notice, kinds)
    return ProcessSample(time=time.time(), monotonic_s=time.monotonic(), pid=None, name=cgroup.name,
                         sockets=_with_ports(found, ports), cgroup=cgroup.relative,
                         pids=tuple(sorted(cgroup_pids(cgroup))), held=len(found))


def socket_key(s: SocketInfo) -> str:
    """A socket's identity across samples: its inode (its fd when the inode is unknown)."""
    return str(s.inode) if s.inode is not None else f"fd{s.fd}"


def sort_sockets(sockets: Iterable[SocketInfo], key: str) -> list[SocketInfo]:
    """Sockets by the sort key (fields.SOCKET_SORTS): quantities largest first,
    names and fds in order, unknown last; ties stay in fd order."""
    by_fd = sorted(sockets, key=lambda s: -1 if s.fd is None else s.fd)
    return sorted_items(by_fd, SOCKET_FIELDS, key)


def interface_rates(
    before: Mapping[str, InterfaceCounters],
    after: Mapping[str, InterfaceCounters],
    elapsed_s: float,
) -> dict[str, InterfaceRates]:
    """Per-second rates between two ``interfaces()`` samples taken elapsed_s apart.

    Only interfaces present in both samples have rates.  A rate is ``None``
    when a counter is missing or went backwards (the interface was
    re-created), never a fake 0.  ValueError unless elapsed_s is finite and > 0.
    """
    if not 0 < elapsed_s < math.inf:
        raise ValueError(f"elapsed_s must be finite and > 0, not {elapsed_s}")

    def rate(old: Optional[int], new: Optional[int]) -> Optional[float]:
        grown = growth(old, new)
        return None if grown is None else grown / elapsed_s

    return {
        name: InterfaceRates(
            name=name,
            rx_bytes_per_s=rate(old.rx_bytes, new.rx_bytes),
            tx_bytes_per_s=rate(old.tx_bytes, new.tx_bytes),
            rx_packets_per_s=rate(old.rx_packets, new.rx_packets),
            tx_packets_per_s=rate(old.tx_packets, new.tx_packets),
        )
        for name, new in after.items()
        if (old := before.get(name)) is not None
    }
