"""Prometheus exporter: sockdiag's structs as metrics, read fresh at each scrape.

``Collector`` is a prometheus_client custom collector.  Every scrape resolves
the watched processes again (``--pid`` and ``--process-name``), reads their
sockets in one kernel pass (``sockets_of_processes``), the sockets of each
watched cgroup (``--cgroup``, Linux: one kernel-filtered dump each) and the
interface counters (``interfaces``) and turns them into metric families.  Nothing read is kept
between scrapes but two counters (errors, dropped per-socket series), so a
process that exited is simply absent from the next scrape; only the text of
label sets already written is kept, to write them again faster.

Units follow Prometheus conventions: bytes, seconds, ``_total`` for counters.
A value the platform cannot supply is left out, never exported as 0.
Availability: Linux, macOS (``--process-name`` only on Linux).
"""

from __future__ import annotations

import bisect
import heapq
import math
import os
import threading
import time
from collections import Counter
from operator import attrgetter, itemgetter
from typing import Iterable, Iterator, Optional, Sequence

try:
    from prometheus_client import ProcessCollector
    from prometheus_client.core import Metric, Sample
    from prometheus_client.registry import CollectorRegistry
except ImportError as err:  # pragma: no cover - depends on the install
    raise ImportError(
        "sockdiag export needs prometheus_client: pip install 'sockdiag[export]'"
    ) from err

from . import _platform
from ._common import LIMITS, LINUX, SOCKET_KINDS, TCP_STATES, InterfaceCounters, SocketInfo
from ._exceptions import AccessDenied, NoSuchProcess, NotSupported, SockdiagError
from .drain import DrainTracker, is_stalled
from .fields import INTERFACE_FIELDS, SOCKET_FIELDS



DEFAULT_MAX_SERIES = 1000

# Upper bounds (seconds) of the per-socket queue delay histogram: 100 us to 10 s.
QUEUE_DELAY_BUCKETS_S = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

# Every state a process's TCP socket can be in, exported even when no socket
# is in it so a count that falls to zero is seen as zero, not as gone.
PROCESS_SOCKET_STATES = tuple(s for s in TCP_STATES[1:12] if s != "TIME_WAIT")

_METRIC_UNITS = {"bytes": "bytes", "s": "seconds", "packets": "packets", "errors": "errors",
                 "drops": "drops"}

# InterfaceCounters field -> (metric name without "_total", help), from the field table.
INTERFACE_COUNTERS = tuple(
    (field.name, f"sockdiag_interface_{field.metric}_{_METRIC_UNITS[field.unit]}", field.help)
    for field in INTERFACE_FIELDS if field.metric is not None)

# SocketInfo field -> (per-process sum metric, per-socket metric, help), from the field table.
# Sums and per-socket series skip LISTEN sockets: their queues are accept
# backlogs (connections), not bytes.
_SOCKET_FIELDS = {field.name: field for field in SOCKET_FIELDS}
BYTE_FIELDS = tuple(
    (name, f"sockdiag_process_{_SOCKET_FIELDS[name].metric}_bytes",
     f"sockdiag_socket_{_SOCKET_FIELDS[name].metric}_bytes", _SOCKET_FIELDS[name].help)
    for name in ("unacked", "unsent", "send_queue", "free", "recv_queue"))
_QUEUE_DELAY_FIELD = _SOCKET_FIELDS["queue_delay_s"]
PROCESS_LABELS = ("pid", "process")
CGROUP_LABELS = ("cgroup", "name")
SOCKET_LABELS = ("pid", "process", "fd", "local", "remote")


_STATE = attrgetter("state")
_QUEUE_DELAY = attrgetter("queue_delay_s")
_LIMITED_BY = attrgetter("limited_by")
_KIND = attrgetter("kind")
_SERIES_FIELDS = tuple(field for field, *_ in BYTE_FIELDS) + (_QUEUE_DELAY_FIELD.name,)
_SOCKET_VALUES = attrgetter(*_SERIES_FIELDS)


# What a scrape read of one process or cgroup: (its pid or path, its name,
# its sockets, their drops by kind of socket since the exporter first saw them).
Read = tuple[str, str, Sequence[SocketInfo], dict[str, int]]


class _DropCounts:
    """The kernel's drop counts of a process's (or cgroup's) sockets summed by
    kind into counters that never go down: each socket's count is added as it
    grows and stays counted once the socket closes."""

    __slots__ = ("last", "totals")

    def __init__(self) -> None:
        self.last: dict[int, int] = {}  # inode -> drops at the last scrape (those with any)
        self.totals = dict.fromkeys(SOCKET_KINDS, 0)

    def add(self, sockets: Sequence[SocketInfo]) -> dict[str, int]:
        last = {}
        for s in sockets:
            if s.drops:  # most sockets drop nothing
                before = self.last.get(s.inode, 0)
                self.totals[s.kind] += s.drops - before if s.drops >= before else s.drops
                last[s.inode] = s.drops
        self.last = last
        return dict(self.totals)


class _ProcessTotals:
    """A process's sockets summed up: counts by state, byte sums, delays.

    Column by column (map, comprehensions, Counter) rather than one Python
    loop over each socket's fields: a scrape of 19,000 sockets stays cheap
    next to reading them.
    """

    __slots__ = ("states", "sums", "known", "connections", "accept_queue",
                 "delay_buckets", "delay_sum_s", "delays_known", "limits", "stalled", "queues",
                 "unix_backlog", "unix_backlog_limit")

    def __init__(self, sockets: Sequence[SocketInfo]) -> None:
        kinds = Counter(map(_KIND, sockets))
        # Queues of every kind; the TCP families below count TCP sockets alone.
        self.queues = {kind: (0, 0) for kind in SOCKET_KINDS}
        for kind in kinds:
            of_kind = [s for s in sockets if s.kind == kind and s.state != "LISTEN"]
            self.queues[kind] = (sum(s.recv_queue or 0 for s in of_kind), sum(s.send_queue or 0 for s in of_kind))
        unix_listeners = [s for s in sockets if s.kind == "unix" and s.state == "LISTEN"]
        self.unix_backlog = sum(s.recv_queue or 0 for s in unix_listeners)
        self.unix_backlog_limit = sum(s.backlog_limit or 0 for s in unix_listeners)
        if kinds["tcp"] != len(sockets):
            sockets = [s for s in sockets if s.kind == "tcp"]
        states = Counter(map(_STATE, sockets))
        listening = [s for s in sockets if s.state == "LISTEN"] if states["LISTEN"] else []
        connections = [s for s in sockets if s.state != "LISTEN"] if listening else sockets
        self.states = {state: states[state] for state in PROCESS_SOCKET_STATES}
        self.states.update(states)
        self.connections = len(connections)
        self.sums, self.known = [], []
        for field, *_ in BYTE_FIELDS:
            values = [v for v in map(attrgetter(field), connections) if v is not None]
            self.sums.append(sum(values))
            self.known.append(len(values))
        backlogs = [s.recv_queue for s in listening if s.recv_queue is not None]
        self.accept_queue: Optional[int] = sum(backlogs) if backlogs or not listening else None
        delays = sorted(d for d in map(_QUEUE_DELAY, connections) if d is not None)
        # Prometheus buckets are cumulative: sockets with delay <= bound.
        self.delay_buckets = [(repr(bound), bisect.bisect_right(delays, bound))
                              for bound in QUEUE_DELAY_BUCKETS_S]
        self.delay_buckets.append(("+Inf", len(delays)))
        self.delay_sum_s = math.fsum(delays)
        self.delays_known = len(delays)
        limits = Counter(map(_LIMITED_BY, connections))
        self.limits = {limit: limits[limit] for limit in LIMITS[1:]}
        self.stalled = sum(map(is_stalled, connections))

    def has(self, known: int) -> bool:
        # A sum over no connection is a true 0; over connections none of
        # which reports the value it is unknown (left out).
        return known > 0 or self.connections == 0


def _series_count(sockets: Sequence[SocketInfo]) -> int:
    """How many per-socket series the sockets would make (one per known value)."""
    return sum(len(sockets) - list(map(attrgetter(field), sockets)).count(None)
               for field in _SERIES_FIELDS)


def _held_bytes(sock: SocketInfo) -> int:
    return sock.send_queue or 0


# --- metric families ---------------------------------------------------------


class _Family(Metric):
    """A metric family of this exporter, its series kept as rows of label
    values: text_format writes the rows as they are, and prometheus_client's
    samples (what a registry of a user's reads) are made from them only when
    read.  Making a Sample and a labels dict per series, and reading them
    back, was most of what a scrape cost per watched process."""

    TYPE = ""

    def __init__(self, name: str, documentation: str, labels: Optional[Sequence[str]] = None) -> None:
        self._samples: Optional[list] = None
        Metric.__init__(self, name, documentation, self.TYPE)
        self.label_names = tuple(labels or ())
        self.rows: list[tuple] = []

    @property
    def samples(self) -> list:
        if self._samples is None:
            self._samples = self._made_samples()
        return self._samples

    @samples.setter
    def samples(self, samples: list) -> None:
        # Metric.__init__ sets an empty list; series are added with add_metric.
        if samples:
            raise AttributeError("the samples of a sockdiag family are made from its rows")
        self._samples = None

    def _labels(self, values: tuple, *extra: tuple[str, str]) -> dict:
        return dict(list(zip(self.label_names, values)) + list(extra))

    def _made_samples(self) -> list:
        raise NotImplementedError


class _Gauge(_Family):
    """GaugeMetricFamily's constructor and add_metric (no timestamps)."""

    TYPE = "gauge"
    SAMPLE_SUFFIX = ""

    def __init__(self, name: str, documentation: str, value: Optional[float] = None,
                 labels: Optional[Sequence[str]] = None) -> None:
        super().__init__(name, documentation, labels)
        if value is not None:
            self.add_metric((), value)

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        self.rows.append((tuple(labels), value))
        self._samples = None

    def _made_samples(self) -> list:
        name = self.name + self.SAMPLE_SUFFIX
        return [Sample(name, self._labels(labels), value) for labels, value in self.rows]


class _Counter(_Gauge):
    """CounterMetricFamily's constructor and add_metric (no created, no exemplar)."""

    TYPE = "counter"
    SAMPLE_SUFFIX = "_total"

    def __init__(self, name: str, documentation: str, value: Optional[float] = None,
                 labels: Optional[Sequence[str]] = None) -> None:
        super().__init__(name.removesuffix("_total"), documentation, value, labels)


class _GaugeHistogram(_Family):
    """GaugeHistogramMetricFamily's constructor (labels only) and add_metric."""

    TYPE = "gaugehistogram"

    def add_metric(self, labels: Sequence[str], buckets: Sequence[tuple[str, float]],
                   gsum_value: float) -> None:
        self.rows.append((tuple(labels), buckets, gsum_value))
        self._samples = None

    def _made_samples(self) -> list:
        samples = []
        for labels, buckets, gsum_value in self.rows:
            samples += [Sample(self.name + "_bucket", self._labels(labels, ("le", bound)), count)
                        for bound, count in buckets]
            # +Inf is last and provides the count value.
            samples += [Sample(self.name + "_gcount", self._labels(labels), buckets[-1][1]),
                        Sample(self.name + "_gsum", self._labels(labels), gsum_value)]
        return samples


class Collector:
    """A prometheus_client collector of sockdiag metrics, read at each scrape.

    ``pids``: processes watched by pid; each must exist when the collector is
    made (NoSuchProcess, AccessDenied otherwise), and is dropped silently once
    it exits.  ``process_names``: processes watched by name (Linux; as ps
    shows it), looked up again at each scrape.  ``per_socket``: also one
    series per socket and byte quantity, at most ``max_series`` of them per
    scrape (the sockets holding the most bytes first); what does not fit is
    counted in ``sockdiag_socket_series_dropped_total``.  ``cgroups``: cgroup
    v2 paths (Linux), each must exist when the collector is made
    (SockdiagError otherwise); per cgroup the ``sockdiag_cgroup_*`` families,
    none while it does not exist.
    """

    def __init__(
        self,
        pids: Iterable[int] = (),
        process_names: Iterable[str] = (),
        per_socket: bool = False,
        max_series: int = DEFAULT_MAX_SERIES,
        cgroups: Iterable[str] = (),
    ) -> None:
        self.pids = tuple(dict.fromkeys(pids))
        self.process_names = frozenset(process_names)
        self.per_socket = per_socket
        if max_series < 0:
            raise ValueError(f"max_series must be >= 0, not {max_series}")
        self.max_series = max_series
        if self.process_names and not hasattr(_platform, "pids_named"):
            raise NotSupported("--process-name is available on Linux only; use --pid")
        for pid in self.pids:
            _platform.process_name(pid)
            # AccessDenied now rather than at every scrape; no socket is read:
            # the first scrape reads every watched process's in one pass.
            _platform.check_access(pid)
        self.cgroups = tuple(dict.fromkeys(cgroups))
        if self.cgroups:
            if not hasattr(_platform, "cgroup_sockets"):
                raise NotSupported("--cgroup is available on Linux only")
            for path in self.cgroups:
                _platform.open_cgroup(path)
        self._errors = {"process": 0, "interfaces": 0, "cgroup": 0}
        self._dropped_series = 0
        # Each process's and cgroup's sockets from scrape to scrape: their drain and drops.
        self._drains: dict[tuple[str, str], tuple[DrainTracker, _DropCounts]] = {}
        self._last_drains: dict[tuple[str, str], tuple[DrainTracker, _DropCounts]] = {}
        # One scrape at a time: a second scraper waits instead of doubling the load.
        self._lock = threading.Lock()

    def watched(self) -> dict[int, str]:
        """{pid: name} of the processes to read in this scrape."""
        found = {}
        for pid in self.pids:
            try:
                found[pid] = _platform.process_name(pid)
            except NoSuchProcess:
                continue
            except AccessDenied:
                found[pid] = ""
        if self.process_names:
            found.update(_platform.pids_named(self.process_names))
        return found

    def describe(self) -> list[Metric]:
        """Nothing: the families depend on what runs at scrape time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The metric families of one scrape, read now."""
        with self._lock:
            started = time.perf_counter()
            # The trackers of processes and cgroups not read again are dropped.
            self._last_drains, self._drains = self._drains, {}
            families = list(self._interface_families())
            families.extend(self._process_families())
            if self.cgroups:
                families.extend(self._cgroup_families())
            families.append(_Counter(
                "sockdiag_scrape_errors",
                "Reads that failed: a process's sockets or the interface counters (by source).",
                labels=("source",),
            ))
            for source, count in sorted(self._errors.items()):
                families[-1].add_metric((source,), count)
            families.append(_Gauge(
                "sockdiag_scrape_duration_seconds",
                "Seconds this scrape took to read every source.",
                value=time.perf_counter() - started,
            ))
        yield from families

    def _drained(self, kind: str, key: str, name: str, sockets: Sequence[SocketInfo]) -> tuple:
        """(key, name, sockets with their drain since the scrapes before (sockdiag.drain),
        their drops by kind of socket since first seen)."""
        tracker, drops = self._last_drains.get((kind, key)) or (DrainTracker(), _DropCounts())
        self._drains[kind, key] = tracker, drops
        return key, name, tracker.update(sockets, time.monotonic()), drops.add(sockets)

    def _interface_families(self) -> Iterator[Metric]:
        try:
            counters = _platform.interfaces()
        except (SockdiagError, OSError):
            self._errors["interfaces"] += 1
            return
        yield from interface_families(counters.values())

    def _process_families(self) -> Iterator[Metric]:
        watched = self.watched()
        read = []
        # One kernel pass for every watched process.
        found = _platform.sockets_of_processes(sorted(watched), kinds=SOCKET_KINDS) if watched else {}
        for pid, name in sorted(watched.items()):
            sockets = found[pid]
            if isinstance(sockets, NoSuchProcess):
                continue  # exited since it was listed: gone, not an error
            if isinstance(sockets, Exception):
                self._errors["process"] += 1
            else:
                read.append(self._drained("process", str(pid), name, sockets))
        yield _Gauge(
            "sockdiag_watched_processes",
            "Watched processes whose sockets this scrape read.",
            value=len(read),
        )
        yield from process_families(read)
        yield from self._fd_families(read)
        if self.per_socket:
            families, dropped = socket_families(read, self.max_series)
            self._dropped_series += dropped
            yield from families
            yield _Counter(
                "sockdiag_socket_series_dropped",
                "Per-socket series left out by --max-series, summed over scrapes.",
                value=self._dropped_series,
            )

    def _fd_families(self, read: Sequence[tuple[str, str, Sequence[SocketInfo]]]
                     ) -> Iterator[Metric]:
        """Each read process's open fds and soft limit: its headroom before
        accept() and connect() fail with EMFILE."""
        open_fds = _Gauge("sockdiag_process_open_fds", "Open file descriptors of the process.",
                          labels=PROCESS_LABELS)
        max_fds = _Gauge(
            "sockdiag_process_max_fds",
            "Soft limit of the process's open file descriptors (RLIMIT_NOFILE); absent when"
            " unlimited.", labels=PROCESS_LABELS)
        for pid, name, *_ in read:
            try:
                headroom = _platform.fd_headroom(int(pid))
            except NoSuchProcess:
                continue  # exited since its sockets were read
            except SockdiagError:
                self._errors["process"] += 1
                continue
            open_fds.add_metric((pid, name), headroom.open_fds)
            if headroom.soft_limit is not None:
                max_fds.add_metric((pid, name), headroom.soft_limit)
        yield from (open_fds, max_fds)


    def _cgroup_families(self) -> Iterator[Metric]:
        read = []
        for path in self.cgroups:
            try:
                cgroup = _platform.open_cgroup(path)
            except SockdiagError:
                continue  # removed (or not yet made): no series, not an error
            try:
                read.append(self._drained("cgroup", cgroup.relative, cgroup.name,
                                          _platform.cgroup_sockets(cgroup, kinds=SOCKET_KINDS)))
            except (SockdiagError, OSError):
                self._errors["cgroup"] += 1
        yield _Gauge(
            "sockdiag_watched_cgroups", "Watched cgroups whose sockets this scrape read.",
            value=len(read),
        )
        yield from cgroup_families(read)


def interface_families(counters: Iterable[InterfaceCounters]) -> list[Metric]:
    """Counter families of interface counters (label ``interface``), plus up and MTU."""
    counters = sorted(counters, key=lambda c: c.name)
    families = []
    for field, name, help_text in INTERFACE_COUNTERS:
        family = _Counter(name, help_text, labels=("interface",))
        for iface in counters:
            value = getattr(iface, field)
            if value is not None:
                family.add_metric((iface.name,), value)
        families.append(family)
    up = _Gauge("sockdiag_interface_up", "1 if the interface is up.", labels=("interface",))
    mtu = _Gauge("sockdiag_interface_mtu_bytes", "MTU of the interface.", labels=("interface",))
    for iface in counters:
        if iface.is_up is not None:
            up.add_metric((iface.name,), int(iface.is_up))
        if iface.mtu is not None:
            mtu.add_metric((iface.name,), iface.mtu)
    families += [up, mtu]
    return families


def process_families(read: Sequence[Read]) -> list[Metric]:
    """Per-process families from [(pid, name, sockets)]: counts, byte sums, delays."""
    return _totals_families("process", PROCESS_LABELS, read)


def cgroup_families(read: Sequence[Read]) -> list[Metric]:
    """Per-cgroup families (``sockdiag_cgroup_*``) from [(path, name, sockets)]:
    a few series per cgroup, whatever its number of connections."""
    return _totals_families("cgroup", CGROUP_LABELS, read)


def _totals_families(kind: str, label_names: tuple[str, ...],
                     read: Sequence[Read]) -> list[Metric]:
    """sockdiag_<kind>_* families: sockets by state, byte sums, accept queue,
    the queue-delay gauge histogram; one set of series per (label, label, sockets)."""
    sockets_by_state = _Gauge(
        f"sockdiag_{kind}_sockets", f"TCP sockets of the {kind}, by state.",
        labels=label_names + ("state",),
    )
    sums = [_Gauge(name.replace("sockdiag_process_", f"sockdiag_{kind}_"),
                   help_text + f" Sum over the {kind}'s connections"
                   " (LISTEN sockets excluded).", labels=label_names)
            for _, name, _, help_text in BYTE_FIELDS]
    accept_queue = _Gauge(
        f"sockdiag_{kind}_accept_queue_connections",
        f"Connections waiting in the {kind}'s listening sockets to be accepted.",
        labels=label_names,
    )
    delay = _GaugeHistogram(
        f"sockdiag_{kind}_queue_delay_seconds",
        "Per-connection queue delay now: how long a byte written now waits before it is sent "
        "(stalled connections, whose wait has no bound, are counted apart).",
        labels=label_names,
    )
    limited = _Gauge(
        f"sockdiag_{kind}_connections_limited",
        f"Connections of the {kind} by what limits them now: receiver, network, sender_buffer "
        "or application.",
        labels=label_names + ("limit",),
    )
    stalled = _Gauge(
        f"sockdiag_{kind}_connections_stalled",
        f"Connections of the {kind} with bytes unsent and nothing acknowledged for a while.",
        labels=label_names,
    )
    queues = _Gauge(
        f"sockdiag_{kind}_queue_bytes",
        f"Bytes in the receive and send queues of the {kind}'s sockets, by kind of socket "
        "(listeners excluded; UDP and UNIX count buffer memory, docs/kinds.md).",
        labels=label_names + ("kind", "queue"),
    )
    drops = _Counter(
        f"sockdiag_{kind}_socket_drops",
        f"Packets the kernel dropped for the {kind}'s sockets (UDP: datagrams that found the "
        "receive buffer full, among others), by kind of socket, since the exporter first saw them.",
        labels=label_names + ("kind",),
    )
    unix_backlog = _Gauge(
        f"sockdiag_{kind}_unix_backlog_connections",
        f"Connections waiting in the {kind}'s UNIX listeners to be accepted.",
        labels=label_names,
    )
    unix_backlog_limit = _Gauge(
        f"sockdiag_{kind}_unix_backlog_limit_connections",
        f"The listen() backlog limits of the {kind}'s UNIX listeners, summed.",
        labels=label_names,
    )
    for first, second, sockets, dropped in read:
        labels = (first, second)
        totals = _ProcessTotals(sockets)
        for socket_kind, (receive, send) in totals.queues.items():
            queues.add_metric(labels + (socket_kind, "receive"), receive)
            queues.add_metric(labels + (socket_kind, "send"), send)
        for socket_kind, count in dropped.items():
            drops.add_metric(labels + (socket_kind,), count)
        unix_backlog.add_metric(labels, totals.unix_backlog)
        unix_backlog_limit.add_metric(labels, totals.unix_backlog_limit)
        for state, count in totals.states.items():
            sockets_by_state.add_metric(labels + (state,), count)
        for family, total, known in zip(sums, totals.sums, totals.known):
            if totals.has(known):
                family.add_metric(labels, total)
        if totals.accept_queue is not None:
            accept_queue.add_metric(labels, totals.accept_queue)
        if totals.has(totals.delays_known):
            delay.add_metric(labels, totals.delay_buckets, totals.delay_sum_s)
        for limit, count in totals.limits.items():
            limited.add_metric(labels + (limit,), count)
        stalled.add_metric(labels, totals.stalled)
    return [sockets_by_state, *sums, accept_queue, delay, limited, stalled, queues, drops, unix_backlog,
            unix_backlog_limit]


def socket_families(
    read: Sequence[Read], max_series: int
) -> tuple[list[Metric], int]:
    """Per-socket families of the connections holding the most bytes, and how
    many series did not fit in max_series."""
    families = [_Gauge(name, help_text, labels=SOCKET_LABELS)
                for _, _, name, help_text in BYTE_FIELDS]
    families.append(_Gauge(
        f"sockdiag_socket_{_QUEUE_DELAY_FIELD.metric}_seconds", _QUEUE_DELAY_FIELD.help,
        labels=SOCKET_LABELS,
    ))
    # The biggest of each process first, then of them all: no tuple per
    # socket (19,000 of them cost ~10 ms, mostly in the garbage collections
    # they trigger).  Each socket yields at least one series, so max_series
    # sockets suffice.
    wanted, candidates = 0, []
    for pid, name, sockets, _ in read:
        connections = [s for s in sockets if s.state != "LISTEN" and s.kind == "tcp"]
        wanted += _series_count(connections)
        candidates += [(_held_bytes(sock), pid, name, sock)
                       for sock in heapq.nlargest(max_series, connections, key=_held_bytes)]
    exported = 0
    for _, pid, name, sock in heapq.nlargest(max_series, candidates, key=itemgetter(0)):
        known = [(family, v) for family, v in zip(families, _SOCKET_VALUES(sock)) if v is not None]
        if exported + len(known) > max_series:
            continue  # a socket is exported whole or not at all
        exported += len(known)
        labels = (pid, name, "" if sock.fd is None else str(sock.fd), sock.local, sock.remote)
        for family, v in known:
            family.add_metric(labels, v)
    return families, wanted - exported


class _ExporterProcess:
    """The exporter's own process_* metrics, named as prometheus_client's
    ProcessCollector names them, with the open fds counted as the kernel keeps
    the number (fd_headroom) rather than by listing /proc/self/fd: with 1,000
    idle connections open, the listing took a scrape from 1 ms to 3.3 ms.
    Availability: Linux (prometheus_client's own elsewhere)."""

    def __init__(self) -> None:
        self._boot_s = _platform.boot_time_s()
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._page_bytes = os.sysconf("SC_PAGE_SIZE")

    def collect(self) -> Iterator[Metric]:
        fields = _platform.process_stat_fields(os.getpid())
        yield _Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                     value=float(fields[20]))
        yield _Gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                     value=float(fields[21]) * self._page_bytes)
        yield _Gauge("process_start_time_seconds",
                     "Start time of the process since unix epoch in seconds.",
                     value=float(fields[19]) / self._ticks + self._boot_s)
        yield _Counter("process_cpu_seconds_total",
                       "Total user and system CPU time spent in seconds.",
                       value=(float(fields[11]) + float(fields[12])) / self._ticks)
        headroom = _platform.fd_headroom(os.getpid())
        yield _Gauge("process_open_fds", "Number of open file descriptors.",
                     value=headroom.open_fds)
        if headroom.soft_limit is not None:
            yield _Gauge("process_max_fds", "Maximum number of open file descriptors.",
                         value=headroom.soft_limit)


def registry(collector: Collector) -> CollectorRegistry:
    """A registry with the collector and the exporter's own process_* metrics."""
    reg = CollectorRegistry()
    reg.register(collector)
    if LINUX:
        reg.register(_ExporterProcess())
    else:
        ProcessCollector(registry=reg)
    return reg
