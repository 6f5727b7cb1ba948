"""Per-process TCP traffic with nothing missed (Linux): bytes sent, acked,
received and retransmitted, with rates.

How each byte is found:

* Live sockets: every sample takes one sock_diag dump per family of every
  TCP socket's tcp_info counters and adds what grew since the previous
  sample to the process that holds the socket (found by the socket's inode
  among the ``/proc/<pid>/fd`` links).  A socket first seen after the
  baseline was born since the previous sample: all its counters are new.
* Closed sockets: the kernel's socket-destroy notifications (as ``ss -E``)
  carry each freed socket's final counters; what grew
  since the socket was last dumped (or everything, if it was born and died
  between two samples) is added as well.  Any user may read them (the kernel
  creates that netlink socket with NL_CFG_F_NONROOT_RECV); what a user
  other than root lacks is the fds of other users' processes, so their
  traffic is reported as unattributed, with the number of such processes.
* Attribution: a notification carries no inode (the socket has left its
  file by then), only the socket cookie; the cookie -> pid map from the
  dumps is kept, so a process that closes a socket before the notification
  is read still gets its bytes.  A socket never seen with an owner (opened
  and closed between two samples) goes to the process listening on its
  local port when there is one (accepted connections), otherwise to the
  unattributed row: its bytes are reported, not dropped.
* Connections opened by a process (as root): the connect tracepoint names
  the process that called connect() before the first byte
  (sockdiag.tracing), so a client connection that lives shorter than one
  sample still goes to its process.  Without root it goes to the
  unattributed row and the sample says why.

Each socket is counted once: the socket is identified by its cookie, its
last counters are remembered, and a notification retires the cookie.

Every network namespace: run from the host's network namespace (the
initial one, where the kernel's threads live), each sample also dumps, once per namespace, the sockets of every
other network namespace that holds an accounted process (a container's),
entering it as root.  Run inside another namespace, sockdiag accounts that
namespace alone, as a tool inside a container sees the container.  Their sockets are keyed by cookie and
namespace (cookies were per namespace before Linux 5.12); listening sockets
attribute accepted connections within their own namespace only; each
namespace has its own subscription to the socket-destroy notifications; the
connect tracer attributes the connections of sockdiag's own namespace only.
A namespace that cannot be entered (not root) is counted in
``unreadable_namespaces``.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Iterable, Optional

from . import _fast, _features, _platform
from ._common import LINUX, ProcessTraffic, TrafficSample, kind_mask
from ._exceptions import AccessDenied, NotSupported
from ._validate import PID
from .fields import TRAFFIC_FIELDS, TRAFFIC_SORTS, sorted_items
from .drain import MIN_STALL_S

# Every state but TIME_WAIT and NEW_SYN_RECV, and the UDP kind, for the datagram pass.
_ALL_STATES = 0xFFFFFFFF & ~((1 << 6) | (1 << 12))
_UDP = kind_mask(("udp",))
# The columns of _Usage.limits, by _fast.tcp_counters()'s limited_by.
_LIMIT_COLUMNS = {"receiver": 0, "network": 1, "sender_buffer": 2}
# Index of each counter in the per-socket tuples of _fast.tcp_counters().
_SENT, _ACKED, _RECEIVED, _RETRANS = range(4)
_ZERO = (0, 0, 0, 0)
# A socket that left the dump may be notified a little later (the kernel
# sends the notification from a work queue): wait this many samples before
# calling it missed.
_DEPARTED_GRACE_SAMPLES = 2

NOT_ON_THIS_PLATFORM = (
    "per-process TCP byte counts need Linux sock_diag; on macOS libproc gives another "
    "process's socket buffers but no byte counters (nettop -P reads them through Apple's "
    "private ntstat), while your own sockets' bytes are in sockdiag.tcp_info(sock)"
    ".bytes_sent / .bytes_received (TCP_CONNECTION_INFO txbytes / rxbytes)")


def _counters(sent, acked, received, retrans) -> tuple[int, int, int, int]:
    # An old kernel's missing counter (None) adds nothing; the struct then
    # shows None for it (see TrafficAccountant._supported).
    return (sent or 0, acked or 0, received or 0, retrans or 0)


def _growth(now: tuple, before: tuple) -> Optional[tuple]:
    """The four counters' growth from before to now; None when one went
    backwards: the kernel zeroes them all when it disconnects a socket
    (tcp_disconnect: a close with SO_LINGER 0, a connect to AF_UNSPEC), so
    what the socket moved since before is unknown.  _watch.growth's rule, on
    four known counters (see _counters) at once: this runs for every socket
    that moved, at every sample."""
    grown = (now[0] - before[0], now[1] - before[1], now[2] - before[2], now[3] - before[3])
    return None if min(grown) < 0 else grown


def _packed_address(family: str, address: str) -> bytes:
    if family == "IPv6":
        return socket.inet_pton(socket.AF_INET6, address)
    return socket.inet_pton(socket.AF_INET, address) + bytes(12)


_WILDCARD = bytes(16)
_V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


class _Usage:
    """Running sums for one process (or the unattributed row)."""

    __slots__ = ("name", "interval", "total", "connections", "closed", "limits", "stalled", "udp_drops",
                 "udp_fill")

    def __init__(self, name: Optional[str]) -> None:
        self.name = name  # read when first seen: still known after the process exits
        self.interval = [0, 0, 0, 0]
        self.total = [0, 0, 0, 0]
        self.connections = 0
        self.closed = 0
        self.limits = [0, 0, 0]  # receiver, network, sender_buffer: connections with bytes waiting
        self.stalled = 0
        self.udp_drops = 0  # datagrams dropped for its UDP sockets in the interval
        self.udp_fill: Optional[float] = None  # its fullest UDP receive buffer, 0..1

    def add(self, grown: tuple) -> None:
        """Add the growth of four counters (sent, acked, received, retrans): _growth's result."""
        interval, total = self.interval, self.total
        for i in range(4):
            interval[i] += grown[i]
            total[i] += grown[i]


class TrafficAccountant:
    """Samples per-process TCP traffic; each ``sample()`` covers the time since the last.

    ``pids``: account only these processes (cheaper: only their fds are
    scanned); ``None`` for every process.  Creating the accountant takes the
    baseline; the first ``sample()`` then has rates.  Socket-destroy
    notifications are used unless ``closed_sockets`` is False or the kernel
    refuses them (a security policy); then ``closed_sockets_counted`` is
    False in every sample and short connections are missed.  Call ``close()``
    (or use it as a context manager) to release the netlink socket.
    Availability: Linux.
    """

    def __init__(self, pids: Optional[Iterable[int]] = None, closed_sockets: bool = True,
                 trace_connects: Optional[bool] = None) -> None:
        if not LINUX:
            raise NotSupported(NOT_ON_THIS_PLATFORM)
        self._pids = None if pids is None else sorted({PID.check(pid, "pids") for pid in pids})
        self._listener = None
        self._tracer = None
        self.connects_untraced_reason: Optional[str] = None
        if trace_connects or trace_connects is None:
            from .tracing import ConnectTracer

            try:
                self._tracer = ConnectTracer()
            except (AccessDenied, NotSupported) as err:
                if trace_connects:
                    raise
                self.connects_untraced_reason = str(err)
        # Other network namespaces' notification listeners, by cookie key (see _namespace_passes).
        self._namespace_listeners: dict[int, _fast.DestroyListener] = {}
        try:
            self._start(closed_sockets)
        except BaseException:
            self.close()  # a start that fails (Ctrl-C, SIGTERM too) leaves no trace instance
            raise

    def _start(self, closed_sockets: bool) -> None:
        """Everything after the tracer: the notification listener, the baseline dump."""
        self._trace_overruns = 0
        if closed_sockets:
            try:
                self._listener = _fast.DestroyListener()
            except PermissionError:  # a security policy refuses the groups
                pass
        self._last: dict[int, tuple] = {}  # cookie -> counters at the last dump
        self._waiting: set[int] = set()  # cookies with bytes unsent at the last dump
        self._stalled_since: dict[int, float] = {}  # cookie -> dump time since which nothing was acked
        self._owner: dict[int, int] = {}  # cookie -> pid, kept after the process closes it
        self._departed: dict[int, tuple] = {}  # cookie -> (counters, samples since it left)
        self._owners: dict[int, int] = {}  # inode -> pid, from the last fd scan
        self._current_listeners: dict[int, list] = {}  # port -> [(address, pid)], last dump
        self._ownerless: set[int] = set()  # inodes in no process's fds at the last scan
        self._last_drops: dict[int, int] = {}  # UDP socket inode -> its drops at the last sample
        self._usage: dict[Optional[int], _Usage] = {}
        # Other network namespaces, by cookie key: the notifications read with
        # their first dump, and their listening sockets at the last dump.
        self._namespace_pending: dict[int, list] = {}
        self._namespace_ports: dict[int, dict[int, list]] = {}
        self._unreadable = 0
        self._initial_namespace = _platform.initial_network_namespace()
        self._overflows = 0  # the listener's count at the previous sample
        self._reset_sockets = 0  # sockets whose counters went backwards since the previous sample
        self._supported = self._kernel_counters()
        self._time = self._dump(baseline=True)
        self._datagrams(baseline=True)
        if self._listener is not None:
            # Notifications queued before the baseline dump are of sockets it
            # did not see; those of sockets it saw (closed since) are kept.
            self._pending = [e for e in self._listener.drain() if e.cookie in self._last]
        else:
            self._pending = []

    @property
    def closed_sockets_counted(self) -> bool:
        """True when socket-destroy notifications are read (sockets closed between samples count)."""
        return self._listener is not None

    @property
    def connects_traced(self) -> bool:
        """True when the connect tracepoint names the process of every new client connection."""
        return self._tracer is not None

    def close(self) -> None:
        """Stop listening for socket-destroy notifications and tracing connects."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for listener in self._namespace_listeners.values():
            listener.close()
        self._namespace_listeners.clear()
        if self._tracer is not None:
            self._tracer.close()
            self._tracer = None

    def __enter__(self) -> "TrafficAccountant":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @staticmethod
    def _kernel_counters() -> tuple[bool, bool, bool, bool]:
        """Which of the four counters (sent, acked, received, retrans) this kernel's tcp_info has."""
        sent = _features.available("tcp_info_bytes_sent")  # bytes_acked and bytes_received: 4.1
        return sent, True, True, sent

    def _usage_of(self, pid: Optional[int]) -> _Usage:
        usage = self._usage.get(pid)
        if usage is None:
            name = "(unattributed)" if pid is None else _platform.process_name_or_none(pid)
            if name is None and pid is not None and self._tracer is not None:
                name = self._tracer.name(pid)  # a process that connected and exited within the interval
            usage = self._usage[pid] = _Usage(name)
        return usage

    def _listener_owner(self, listeners: dict, port: int, address: bytes) -> Optional[int]:
        """The pid listening on (address, port) of this host, if one of ours does."""
        for bound, pid in listeners.get(port, ()):
            if bound == _WILDCARD or bound == address or (
                    address.startswith(_V4_MAPPED_PREFIX) and bound[:4] == address[12:]):
                return pid
        return None

    @staticmethod
    def _moved(before: Optional[tuple], counters: tuple) -> bool:
        """Did a socket send or receive since its last dump?  Only then is its
        unknown owner worth a scan of every process's fds (idle new sockets
        wait; one that moves later, or closes, is attributed then)."""
        before = before or _ZERO
        return (counters[_SENT] or 0) != before[_SENT] or (counters[_RECEIVED] or 0) != before[_RECEIVED]

    def _namespace_passes(self) -> list[tuple[int, list, list]]:
        """(cookie key, sockets, listeners) of a tcp_counters() dump of
        sockdiag's network namespace (key 0), then of each other namespace
        that holds an accounted process (key: its namespace inode << 64,
        or-ed into its cookies)."""
        network_namespace = _platform.network_namespace
        passes = [(0, *_fast.tcp_counters())]
        self._pass_pids = [0]  # a process of each namespace read (0: sockdiag's own)
        own = network_namespace(os.getpid())
        self._unreadable_namespaces = 0
        if own != self._initial_namespace:
            return passes  # inside a container's namespace: that one alone
        pids = self._pids if self._pids is not None else _platform.all_pids()
        namespaces: dict[int, int] = {}
        for pid in pids:
            namespace = network_namespace(pid)
            if namespace is not None and namespace != own:
                namespaces.setdefault(namespace, pid)
        for key in self._namespace_listeners.keys() - {namespace << 64 for namespace in namespaces}:
            self._namespace_listeners.pop(key).close()  # no accounted process is left there
            self._namespace_pending.pop(key, None)
        for namespace, pid in namespaces.items():
            # Its cookies carry this key: they never meet another namespace's.
            key = namespace << 64
            new = self._listener is not None and key not in self._namespace_listeners
            try:
                if new:
                    self._namespace_listeners[key] = _fast.DestroyListener(pid=pid)
                sockets, listeners = _fast.tcp_counters(pid)
            except PermissionError:
                self._unreadable_namespaces += 1
                continue
            except FileNotFoundError:
                continue  # the process exited: its namespace may be gone too
            self._pass_pids.append(pid)
            sockets = [(cookie | key, *rest) for cookie, *rest in sockets]
            if new:
                # As at the baseline: notifications of sockets this first dump did not see are dropped.
                seen = {cookie for cookie, *_ in sockets}
                self._namespace_pending[key] = [
                    event for event in self._namespace_listeners[key].drain() if event.cookie | key in seen]
            passes.append((key, sockets, listeners))
        return passes

    def _scan_owners(self, inodes: Iterable[int]) -> dict[int, int]:
        """Map socket inodes to their processes anew (every process's fds);
        inodes that none of them holds are remembered as ownerless."""
        owners, self._unreadable = _fast.socket_owners(self._pids)
        self._owners = owners
        self._ownerless = {inode for inode in inodes if inode not in owners}
        return owners

    def _datagrams(self, baseline: bool = False) -> None:
        """Each process's UDP drops since the previous sample and its fullest UDP
        receive buffer, from one dump of the UDP sockets of each namespace read."""
        found = []
        for pid in self._pass_pids:
            try:
                found += _fast.namespace_sockets_linux(_ALL_STATES, None, pid, None, _UDP)
            except OSError:
                continue  # the namespace's last process exited meanwhile
        owners = self._owners
        if any(s.inode not in owners and s.inode not in self._ownerless and (s.drops or s.recv_queue)
               for s in found):
            owners = self._scan_owners([s.inode for s in found])
        restricted = self._pids is not None
        last_drops = {}
        for s in found:
            pid = owners.get(s.inode)
            if pid is None and restricted:
                continue  # another process's socket
            if s.drops:
                last_drops[s.inode] = s.drops
                before = self._last_drops.get(s.inode, 0)
                if not baseline:
                    self._usage_of(pid).udp_drops += s.drops - before if s.drops >= before else s.drops
            if s.rcvbuf and not baseline:
                usage = self._usage_of(pid)
                fill = min((s.recv_queue or 0) / s.rcvbuf, 1.0)
                usage.udp_fill = fill if usage.udp_fill is None else max(usage.udp_fill, fill)
        self._last_drops = last_drops

    def _dump(self, baseline: bool = False) -> float:
        """Dump every socket, attribute the growth of its counters; the dump's time."""
        passes = self._namespace_passes()
        now = time.monotonic()
        owners = self._owners
        previous = self._last
        # Inodes no process held at the last scan (another pid namespace's,
        # the kernel's) do not ask for a scan again.
        ownerless = self._ownerless
        if (baseline or self._pids is not None
                or any(inode not in owners and inode not in ownerless
                       for _k, _s, listeners_raw in passes for _p, _a, inode in listeners_raw)
                or any(inode and inode not in owners and inode not in ownerless
                       and self._moved(previous.get(cookie), counters)
                       for _k, sockets, _l in passes for cookie, inode, counters, *_ in sockets)):
            owners = self._scan_owners(
                [inode for _k, sockets, _l in passes for _c, inode, *_ in sockets]
                + [inode for _k, _s, listeners_raw in passes for _p, _a, inode in listeners_raw])
        current = {}
        owner_of = self._owner
        tracer = self._tracer
        if tracer is not None:
            tracer.read()
        restricted = self._pids is not None
        usage_of = self._usage
        stalled_since, self._stalled_since = self._stalled_since, {}
        waiting_now: set[int] = set()
        for key, sockets, listeners_raw in passes:
            listeners: dict[int, list] = {}
            for port, address, inode in listeners_raw:
                pid = owners.get(inode)
                if pid is not None:
                    listeners.setdefault(port, []).append((address, pid))
            if not key:
                # Notifications read now are of sockets that lived since the previous
                # dump: a listener closed since then may still have accepted them.
                self._listeners = {port: listeners.get(port, []) + self._current_listeners.get(port, [])
                                   for port in listeners.keys() | self._current_listeners.keys()}
                self._current_listeners = listeners
            else:
                self._namespace_ports[key] = listeners
            # The connect tracer sees every namespace's connects but names them by
            # port and address alone: it attributes sockdiag's own namespace's.
            namespace_tracer = tracer if not key else None
            for cookie, inode, counters, port, address, waiting in sockets:
                pid = owners.get(inode) if inode else None
                if pid is None:
                    pid = owner_of.get(cookie)
                    if pid is None:
                        pid = self._listener_owner(listeners, port, address)
                        if pid is None and namespace_tracer is not None:
                            pid = namespace_tracer.owner(None, port, address)
                if pid is not None:
                    owner_of[cookie] = pid
                elif restricted:
                    continue  # another process's socket
                if None in counters:
                    counters = _counters(*counters)
                current[cookie] = counters
                usage = usage_of.get(pid) or self._usage_of(pid)
                usage.connections += 1
                before = previous.get(cookie)
                if waiting is not None:
                    limit = _LIMIT_COLUMNS.get(waiting[1])
                    if limit is not None:
                        usage.limits[limit] += 1
                    waiting_now.add(cookie)
                    # Bytes waiting at the previous dump too, and nothing acknowledged since.
                    if cookie in self._waiting and before is not None and before[_ACKED] == counters[_ACKED]:
                        since = self._stalled_since[cookie] = stalled_since.get(cookie, self._time)
                        usage.stalled += now - since >= MIN_STALL_S
                if before == counters or baseline:
                    continue  # idle since the last dump (most sockets), or the baseline
                if before is None:
                    departed = self._departed.pop(cookie, None)
                    before = departed[0] if departed else _ZERO
                self._add(usage, counters, before)
        for cookie, counters in previous.items():
            if cookie not in current:
                self._departed[cookie] = (counters, 0)
        self._last = current
        self._waiting = waiting_now
        return now

    def _account_closed(self, events, key: int = 0) -> None:
        """Add what grew between the last dump of each freed socket and its
        end; events of the namespace of cookie key (0: sockdiag's own)."""
        restricted = self._pids is not None
        listeners = self._listeners if not key else self._namespace_ports.get(key, {})
        tracer = self._tracer if not key else None  # it names our namespace's connects
        for event in events:
            tcp = event.tcp
            if tcp is None:
                continue
            cookie = event.cookie | key
            final = _counters(tcp.bytes_sent, tcp.bytes_acked, tcp.bytes_received, tcp.bytes_retrans)
            before = self._last.pop(cookie, None)
            if before is None:
                departed = self._departed.pop(cookie, None)
                before = departed[0] if departed else _ZERO
            pid = self._owner.pop(cookie, None)
            local_address = _packed_address(event.family, event.local_address)
            if pid is None:
                pid = self._listener_owner(listeners, event.local_port, local_address)
            if tracer is not None:
                family = socket.AF_INET6 if event.family == "IPv6" else socket.AF_INET
                if pid is None:
                    pid = tracer.owner(
                        family, event.local_port, local_address,
                        event.remote_port, _packed_address(event.family, event.remote_address))
                tracer.forget(family, event.local_port, event.remote_port)
            if pid is None and restricted:
                continue  # most likely another process's connection
            usage = self._usage_of(pid)
            usage.closed += 1
            self._add(usage, final, before)

    def _add(self, usage: _Usage, now: tuple, before: tuple) -> None:
        """Add a socket's growth from before to now to usage; a socket whose
        counters were reset is counted as missed instead."""
        grown = _growth(now, before)
        if grown is None:
            self._reset_sockets += 1
        else:
            usage.add(grown)

    def sample(self) -> TrafficSample:
        """Traffic of every (or each chosen) process since the previous sample."""
        for usage in self._usage.values():
            usage.interval = [0, 0, 0, 0]
            usage.connections = 0
            usage.closed = 0
            usage.limits = [0, 0, 0]
            usage.stalled = 0
            usage.udp_drops = 0
            usage.udp_fill = None
        now = self._dump()
        self._datagrams()
        if self._listener is not None:
            # Drained after the dump: a socket freed after it is in self._last
            # (counted up to the dump), one freed before is in _departed.
            closed = self._pending + self._listener.drain()
            elsewhere = [(key, self._namespace_pending.pop(key, []) + listener.drain())
                         for key, listener in self._namespace_listeners.items()]
            if self._tracer is not None:
                # After the drain: a connection's connect events precede its
                # destroy notification, so each one drained is known by now.
                self._tracer.read()
            self._account_closed(closed)
            for key, events in elsewhere:
                self._account_closed(events, key)
            self._pending = []
        missed, self._reset_sockets = self._reset_sockets, 0
        grace = _DEPARTED_GRACE_SAMPLES if self._listener is not None else 0
        for cookie, (counters, age) in list(self._departed.items()):
            if age >= grace:
                del self._departed[cookie]
                self._owner.pop(cookie, None)
                missed += 1
            else:
                self._departed[cookie] = (counters, age + 1)
        interval_s = now - self._time
        self._time = now
        return TrafficSample(
            time=time.time(),
            interval_s=interval_s,
            processes=tuple(self._rows(interval_s)),
            closed_sockets_counted=self._listener is not None,
            missed_sockets=missed,
            notification_overflows=self._new_overflows(),
            unreadable_processes=self._unreadable,
            unreadable_namespaces=self._unreadable_namespaces,
            connects_traced=self._tracer is not None,
            connects_untraced_reason=self.connects_untraced_reason,
            trace_overruns=self._new_trace_overruns(),
            running_as_root=os.geteuid() == 0,
        )

    def _new_trace_overruns(self) -> int:
        """Connect events the kernel dropped since the previous sample."""
        if self._tracer is None:
            return 0
        new, self._trace_overruns = (self._tracer.overruns - self._trace_overruns,
                                     self._tracer.overruns)
        return new

    def _new_overflows(self) -> int:
        """Times notifications were dropped since the previous sample."""
        if self._listener is None:
            return 0
        total = self._listener.overflows + sum(
            listener.overflows for listener in self._namespace_listeners.values())
        new, self._overflows = max(total - self._overflows, 0), total
        return new

    def _rows(self, interval_s: float) -> list[ProcessTraffic]:
        rows = []
        supported = self._supported
        for pid, usage in list(self._usage.items()):
            if pid is not None and self._pids is not None and pid not in self._pids:
                continue
            if not usage.connections and not any(usage.interval) and usage.udp_fill is None:
                if pid is not None and not _platform.process_exists(pid):
                    del self._usage[pid]  # exited, nothing left to report
                continue  # idle: no connection now, no bytes in the interval
            interval = [v if ok else None for v, ok in zip(usage.interval, supported)]
            total = [v if ok else None for v, ok in zip(usage.total, supported)]
            rates = [None if v is None else v / interval_s for v in interval]
            rows.append(ProcessTraffic(pid, usage.name, usage.connections, usage.closed,
                                       *interval, *rates, *total, *usage.limits, usage.stalled,
                                       usage.udp_drops, usage.udp_drops / interval_s, usage.udp_fill))
        return sort_traffic(rows, "total")


def sort_traffic(rows: Iterable[ProcessTraffic], key: str = "total") -> list[ProcessTraffic]:
    """Rows ordered by key (one of fields.TRAFFIC_SORTS): largest first, pid and name ascending."""
    try:
        return sorted_items(rows, TRAFFIC_FIELDS, key)
    except KeyError:
        raise ValueError(f"unknown sort key {key!r}: use one of {', '.join(TRAFFIC_SORTS)}") from None


_UNATTRIBUTED_CGROUP = "(unattributed)"


def by_cgroup(rows: Iterable[ProcessTraffic], known: dict[int, str]) -> list[ProcessTraffic]:
    """The rows summed per cgroup v2 (``top --by cgroup``): pid None, name the
    cgroup's readable name (sockdiag.cgroups.name_of).  known caches pid ->
    cgroup path, read when a pid is first seen and kept after it exits, so
    a process's last bytes stay with its cgroup.  Unordered."""
    from .cgroups import name_of

    groups: dict[str, list[ProcessTraffic]] = {}
    for row in rows:
        path = None
        if row.pid is not None:
            path = known.get(row.pid)
            if path is None:
                path = _platform.process_cgroup(row.pid)
                if path is not None:
                    known[row.pid] = path
        groups.setdefault(_UNATTRIBUTED_CGROUP if path is None else path, []).append(row)
    summed = []
    names = ProcessTraffic._fields[2:]
    for path, members in groups.items():
        values = []
        for name in names:
            column = [getattr(row, name) for row in members if getattr(row, name) is not None]
            # The fullest buffer of a cgroup is its fullest process's; the rest add up.
            values.append((max if name == "udp_receive_fill" else sum)(column) if column else None)
        summed.append(ProcessTraffic(None, path if path == _UNATTRIBUTED_CGROUP else name_of(path), *values))
    return summed


def coverage_notes(sample: TrafficSample) -> list[str]:
    """One line for each way the sample may be short of the truth (empty: nothing missed)."""
    notes = []
    if not sample.closed_sockets_counted:
        notes.append(
            "socket-destroy notifications are off: connections opened and closed between "
            "two samples are missed, and closed ones lose their last bytes")
    if sample.missed_sockets:
        notes.append(f"{sample.missed_sockets} sockets closed without final counters, or had them "
                     "zeroed by a disconnect: their bytes since the previous sample are missing")
    if sample.notification_overflows:
        notes.append(f"the kernel dropped socket-destroy notifications "
                     f"{sample.notification_overflows} times (too many at once)")
    # Where unattributed bytes went: a row of their own when there were any.
    counted = ("in the row with PID -" if any(row.pid is None for row in sample.processes)
               else "none in this sample")
    if sample.unreadable_processes:
        why = ("they refuse even root, as processes of another pid or user namespace do"
               if sample.running_as_root else "other users' processes need root")
        notes.append(f"{sample.unreadable_processes} processes' fds could not be read ({why}); "
                     f"unattributed traffic: {counted}")
    if sample.unreadable_namespaces:
        notes.append(f"{sample.unreadable_namespaces} network namespaces of other processes could "
                     "not be entered (root is needed): their traffic is missing")
    if sample.connects_untraced_reason:
        notes.append("client connections that close within one sample cannot be attributed "
                     f"to their process ({sample.connects_untraced_reason}); unattributed "
                     f"traffic: {counted}")
    if sample.trace_overruns:
        notes.append(f"the kernel dropped {sample.trace_overruns} connect events (too many at "
                     "once): some short connections may be unattributed")
    if LINUX:
        notes += _features.missing_notes("top")
    return notes
