"""UDP receive-buffer benchmark (``sockdiag bench rcvbuf``).  Linux only.

On loopback, a sender sends bursts of datagrams at an average rate to a
receiver that spends a fixed service time on each datagram it reads; once
per SO_RCVBUF size.  Sender and receiver take turns in one thread: the
bursts leave on time, and between them the receiver reads (so the queue
the kernel holds is exactly what the receiver has not reached yet).

Per size: what the kernel granted (getsockopt after setsockopt, which the
kernel doubles, and caps at net.core.rmem_max unless SO_RCVBUFFORCE is
used), the datagrams sent, read and dropped (the receiver socket's own
count, SO_MEMINFO), and the time each datagram waited in the queue (from
the kernel's receive stamp, SO_TIMESTAMPNS, to the read).

    from sockdiag.rcvbuf import RcvbufConfig, benchmark
    report = benchmark(RcvbufConfig(rcvbufs=(212992, 1 << 20), ...))
"""

from __future__ import annotations

import os
import platform
import socket
import struct
import time
from typing import Callable, Optional

from . import _platform
from ._common import FrozenStruct, figure_class
from ._exceptions import NotSupported, SockdiagError
from .fields import figure_table, format_figure
from .interrupts import signals_as_interrupt
from .stats import percentile
from ._validate import format_size

# Not in Python's socket module.
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)

#: quic-go's advice: net.core.rmem_max=7500000 ("7.5 MB").
QUIC_GO_RCVBUF = 7_500_000
#: A size is recommended when it drops at most this fraction of the datagrams.
DROP_TOLERANCE = 0.001

#: The whole traffic of a run is bounded: at most this many datagrams.
MAX_DATAGRAMS_PER_RUN = 2_000_000

_STAMP = struct.Struct("=QQ")  # sequence number, CLOCK_REALTIME ns at send
_TIMESPEC = struct.Struct("=qq")


class RcvbufConfig(FrozenStruct):
    """What a sweep does: SO_RCVBUF sizes to request (bytes), the average
    rate (bit/s of UDP payload), the datagram size (bytes), datagrams per
    burst, the receiver's service time per datagram (microseconds), the
    seconds of bursts per size, and whether to request with SO_RCVBUFFORCE
    (root, or CAP_NET_ADMIN: not capped by net.core.rmem_max)."""

    rcvbufs: tuple[int, ...]
    rate_bps: int
    datagram_size: int
    burst: int
    service_us: int
    duration_s: float
    force: bool = False

    @property
    def datagrams_per_s(self) -> float:
        return self.rate_bps / (8 * self.datagram_size)

    @property
    def load(self) -> float:
        """Offered load on the receiver: arrival rate x service time (above 1, it falls behind)."""
        return self.datagrams_per_s * self.service_us / 1e6


class RcvbufResult(FrozenStruct):
    """One size's run.

    ``requested``: the bytes asked for; ``granted``: getsockopt(SO_RCVBUF)
    after, the kernel's limit on the memory queued datagrams take (twice
    the request, unless capped); ``via``: "SO_RCVBUF" or "SO_RCVBUFFORCE";
    ``capped``: net.core.rmem_max cut the request.  ``sent``, ``received``:
    datagrams; ``kernel_drops``: the receiver socket's drop count
    (SO_MEMINFO), which on loopback equals sent - received;
    ``drop_pct``: 100 x (sent - received) / sent.  ``queue_*_ms``: from the
    kernel's receive stamp to the read, over the datagrams read.
    ``bytes_per_datagram``: the buffer memory one waiting datagram takes
    (payload and the kernel's overhead), measured after the first burst;
    None when nothing was queued then.  ``service_mean_us``: the measured
    time per datagram read (config.service_us plus what the machine took
    beyond it); ``stall_max_ms``: the longest the one thread that sends and
    reads fell behind its schedule (a read past its service time, a burst
    past its time): off the CPU, on a busy machine.  Drops at a size large
    enough for the bursts follow such stalls.
    """

    requested: int
    granted: int
    via: str
    capped: bool
    sent: int
    received: int
    kernel_drops: int
    drop_pct: float
    queue_p50_ms: Optional[float]
    queue_p99_ms: Optional[float]
    queue_max_ms: Optional[float]
    bytes_per_datagram: Optional[int]
    service_mean_us: Optional[float]
    stall_max_ms: float


class Recommendation(FrozenStruct):
    """The smallest buffer that dropped at most 0.1% of the datagrams
    (every field None: none did): the request (bytes) that gets it, what
    the kernel granted, and ``needs``: the sysctl that allows the request
    when it is above net.core.rmem_max, else None."""

    requested: Optional[int]
    granted: Optional[int]
    drop_pct: Optional[float]
    queue_p99_ms: Optional[float]
    needs: Optional[str]


class QuicGoFit(FrozenStruct):
    """Where quic-go's 7.5 MB holds here: the datagrams a 7.5 MB request
    (granted twice that, if rmem_max allows) queues before dropping, the
    payload that is, and how long a receiver may stall at the bench's rate
    before the buffer overflows.  None without a measured bytes_per_datagram."""

    granted: int
    datagrams: Optional[int]
    payload_bytes: Optional[int]
    stall_ms: Optional[float]
    enough_for_this_burst: Optional[bool]


class RcvbufReport(FrozenStruct):
    """A finished sweep: the kernel and its limits, the config, one result
    per size, the recommendation and where quic-go's advice holds."""

    kernel: str
    rmem_max: int
    rmem_default: int
    config: RcvbufConfig
    notices: tuple[str, ...]
    results: tuple[RcvbufResult, ...]
    recommendation: Recommendation
    quic_go: QuicGoFit


def _sysctl_int(name: str) -> int:
    value = _platform.sysctl(name)
    try:
        return int(value)
    except ValueError:
        raise NotSupported(f"{name} is not a number: {value!r}") from None


def set_rcvbuf(sock: socket.socket, nbytes: int, force: bool) -> str:
    """Request a receive buffer of nbytes; the option used, "SO_RCVBUFFORCE"
    or "SO_RCVBUF" (force without the privilege falls back to SO_RCVBUF)."""
    if force:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, nbytes)
            return "SO_RCVBUFFORCE"
        except PermissionError:
            pass
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, nbytes)
    return "SO_RCVBUF"


def force_allowed() -> bool:
    """Whether SO_RCVBUFFORCE works here (tried once on a socket of its own)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        return set_rcvbuf(probe, 4096, force=True) == "SO_RCVBUFFORCE"


def _wait_until(deadline: float) -> None:
    # Sleeps are late by tens of microseconds: sleep the bulk, spin the rest.
    remaining = deadline - time.perf_counter()
    if remaining > 0.002:
        time.sleep(remaining - 0.001)
    while time.perf_counter() < deadline:
        pass


def _kernel_stamp_ns(ancillary) -> Optional[int]:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return seconds * 1_000_000_000 + nanoseconds
    return None


def run_one(requested: int, config: RcvbufConfig) -> RcvbufResult:
    """One size: bursts for config.duration_s, then the queue is drained."""
    size = config.datagram_size
    interval_s = config.burst / config.datagrams_per_s
    bursts = max(1, min(round(config.duration_s / interval_s),
                        MAX_DATAGRAMS_PER_RUN // config.burst))
    service_s = config.service_us / 1e6
    payload = bytearray(size)
    ancillary_space = socket.CMSG_SPACE(_TIMESPEC.size)
    queue_ns: list[int] = []
    sent = received = 0
    bytes_per_datagram = None
    stall_max_s = serving_s = 0.0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        via = set_rcvbuf(receiver, requested, config.force)
        granted = receiver.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        receiver.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        receiver.bind(("127.0.0.1", 0))
        receiver.setblocking(False)
        sender.connect(receiver.getsockname())

        def read_one() -> bool:
            nonlocal received, stall_max_s, serving_s
            started = time.perf_counter()  # the service time includes the read
            try:
                _, ancillary, _, _ = receiver.recvmsg(size, ancillary_space)
            except BlockingIOError:
                return False
            read_ns = time.time_ns()
            stamp_ns = _kernel_stamp_ns(ancillary)
            if stamp_ns is not None:
                queue_ns.append(read_ns - stamp_ns)
            received += 1
            _wait_until(started + service_s)
            took = time.perf_counter() - started
            serving_s += took
            stall_max_s = max(stall_max_s, took - service_s)
            return True

        start = time.perf_counter()
        for index in range(bursts):
            due = start + index * interval_s
            while time.perf_counter() < due:
                if not read_one():
                    _wait_until(due)
            stall_max_s = max(stall_max_s, time.perf_counter() - due)
            for _ in range(config.burst):
                _STAMP.pack_into(payload, 0, sent, time.time_ns())
                sender.send(payload)
                sent += 1
            if index == 0:
                queues = _platform.socket_queues(receiver)
                waiting = sent - queues.drops - received
                if waiting > 0 and queues.recv_queue:
                    bytes_per_datagram = round(queues.recv_queue / waiting)
        while read_one():
            pass
        drops = _platform.socket_queues(receiver).drops
    capped = via == "SO_RCVBUF" and granted < 2 * requested
    queue_ms = [ns / 1e6 for ns in queue_ns]
    return RcvbufResult(
        requested=requested, granted=granted, via=via, capped=capped, sent=sent,
        received=received, kernel_drops=drops,
        drop_pct=100.0 * (sent - received) / sent if sent else 0.0,
        queue_p50_ms=percentile(queue_ms, 0.5), queue_p99_ms=percentile(queue_ms, 0.99),
        queue_max_ms=max(queue_ms) if queue_ms else None,
        bytes_per_datagram=bytes_per_datagram, 
        service_mean_us=1e6 * serving_s / received if received else None,
        stall_max_ms=1000 * stall_max_s)


def recommend(results: list[RcvbufResult], rmem_max: int) -> Recommendation:
    """The smallest granted buffer dropping at most DROP_TOLERANCE (see Recommendation)."""
    good = sorted((r for r in results if r.drop_pct <= 100 * DROP_TOLERANCE),
                  key=lambda r: (r.granted, r.requested))
    if not good:
        return Recommendation(requested=None, granted=None, drop_pct=None, queue_p99_ms=None,
                              needs=None)
    chosen = good[0]
    # A capped request got rmem_max: asking for rmem_max does the same.
    requested = chosen.granted // 2 if chosen.capped else chosen.requested
    needs = (f"sysctl -w net.core.rmem_max={requested} (or SO_RCVBUFFORCE as root)"
             if requested > rmem_max else None)
    return Recommendation(requested=requested, granted=chosen.granted, drop_pct=chosen.drop_pct,
                          queue_p99_ms=chosen.queue_p99_ms, needs=needs)


def quic_go_fit(results: list[RcvbufResult], config: RcvbufConfig, rmem_max: int,
                force: bool) -> QuicGoFit:
    """Where a 7.5 MB request holds, from the measured memory per datagram."""
    granted = 2 * (QUIC_GO_RCVBUF if force else min(QUIC_GO_RCVBUF, rmem_max))
    measured = [r.bytes_per_datagram for r in results if r.bytes_per_datagram]
    if not measured:
        return QuicGoFit(granted=granted, datagrams=None, payload_bytes=None, stall_ms=None,
                         enough_for_this_burst=None)
    per_datagram = max(measured)
    datagrams = granted // per_datagram
    return QuicGoFit(
        granted=granted, datagrams=datagrams, payload_bytes=datagrams * config.datagram_size,
        stall_ms=1000.0 * datagrams / config.datagrams_per_s,
        enough_for_this_burst=datagrams >= config.burst)


def stall_notices(results, config: RcvbufConfig) -> list[str]:
    """A notice per size whose drops may come from the machine, not the bursts:
    it dropped, and its thread stalled longer than a burst takes to serve."""
    burst_ms = config.burst * config.service_us / 1000
    return [f"at SO_RCVBUF {format_size(r.requested)} the bench stalled {r.stall_max_ms:,.0f} ms "
            f"(a burst takes {burst_ms:g} ms to serve): its drops include what arrived "
            "meanwhile; a busy machine, rerun to tell"
            for r in results
            if r.drop_pct > 100 * DROP_TOLERANCE and r.stall_max_ms > burst_ms]


def run_count(config: RcvbufConfig) -> int:
    """How many runs a sweep makes (one per size)."""
    return len(config.rcvbufs)


def benchmark(config: RcvbufConfig,
              on_run: Optional[Callable[[RcvbufResult], None]] = None) -> RcvbufReport:
    """Run one burst run per size in config.rcvbufs on loopback; the RcvbufReport.

    on_run is called after each run.  Sockets are closed on return, on
    error and on Ctrl-C/SIGTERM/SIGHUP.  NotSupported off Linux.
    """
    if platform.system() != "Linux":
        raise NotSupported("sockdiag bench rcvbuf runs on Linux only (SO_MEMINFO drops)")
    rmem_max = _sysctl_int("net.core.rmem_max")
    notices = []
    if config.force and not force_allowed():
        notices.append("SO_RCVBUFFORCE needs root (CAP_NET_ADMIN): requesting with SO_RCVBUF, "
                       f"capped at net.core.rmem_max ({rmem_max})")
        config = config.replace(force=False)
    capped = [size for size in config.rcvbufs if size > rmem_max and not config.force]
    if capped:
        notices.append(f"net.core.rmem_max is {rmem_max}: the kernel caps "
                       f"{', '.join(map(format_size, capped))} to it (SO_RCVBUF is silently "
                       "capped; --force uses SO_RCVBUFFORCE as root)")
    if config.load >= 1:
        notices.append(f"the receiver is offered {config.load:.0%} of what it can serve: "
                       "it falls behind, and every buffer ends up dropping")
    results = []
    with signals_as_interrupt():
        for requested in config.rcvbufs:
            result = run_one(requested, config)
            results.append(result)
            if on_run is not None:
                on_run(result)
    notices.extend(stall_notices(results, config))
    return RcvbufReport(
        kernel=os.uname().release, rmem_max=rmem_max, rmem_default=_sysctl_int("net.core.rmem_default"),
        config=config, notices=tuple(notices), results=tuple(results),
        recommendation=recommend(results, rmem_max),
        quic_go=quic_go_fit(results, config, rmem_max, config.force))


# --- what a sweep tells: table, sentences, JSON, plot -------------------------------------

_COLUMNS = (
    ("SO_RCVBUF\nrequested", lambda r: format_size(r.requested)),
    ("granted\n(getsockopt)", lambda r: format_size(r.granted) + (" capped" if r.capped else "")),
    ("via", lambda r: r.via),
    ("sent", lambda r: f"{r.sent:,}"),
    ("read", lambda r: f"{r.received:,}"),
    ("kernel\ndrops", lambda r: f"{r.kernel_drops:,}"),
    ("dropped\n%", lambda r: format_figure(r.drop_pct, 2)),
    ("queue\np50 ms", lambda r: format_figure(r.queue_p50_ms, 2)),
    ("queue\np99 ms", lambda r: format_figure(r.queue_p99_ms, 2)),
    ("queue\nmax ms", lambda r: format_figure(r.queue_max_ms, 2)),
    ("service\nmean us", lambda r: format_figure(r.service_mean_us, 1)),
    ("stall\nmax ms", lambda r: format_figure(r.stall_max_ms, 2)),
)


def table(results) -> str:
    """The results as a table for people."""
    return figure_table(_COLUMNS, results, left_aligned=("via",))


def describe(report: RcvbufReport) -> str:
    """One line: what the figures were measured with."""
    config = report.config
    return (f"loopback, kernel {report.kernel}, net.core.rmem_max {report.rmem_max}, "
            f"rmem_default {report.rmem_default}; {config.rate_bps / 1e6:g} Mbit/s of "
            f"{config.datagram_size}-byte datagrams in bursts of {config.burst}, "
            f"receiver {config.service_us} us per datagram (load {config.load:.0%}), "
            f"{config.duration_s:g} s per size")


def recommendation_lines(report: RcvbufReport) -> list[str]:
    """The recommendation, and where quic-go's 7.5 MB holds, in sentences."""
    chosen = report.recommendation
    if chosen.requested is None:
        lines = [f"recommendation: none of the sizes kept drops within {DROP_TOLERANCE:.1%}"
                 + (" (the receiver is too slow for the rate: no buffer helps)"
                    if report.config.load >= 1 else "; try larger ones")]
    else:
        needs = f"; needs {chosen.needs}" if chosen.needs else ""
        lines = [f"recommendation: SO_RCVBUF {format_size(chosen.requested)} (the kernel grants "
                 f"{format_size(chosen.granted)}): {chosen.drop_pct:.2f}% dropped, "
                 f"queue p99 {format_figure(chosen.queue_p99_ms, 2)} ms (the smallest size within "
                 f"{DROP_TOLERANCE:.1%} drops){needs}"]
    fit = report.quic_go
    capped = (f"capped by net.core.rmem_max to {format_size(fit.granted)}"
              if fit.granted < 2 * QUIC_GO_RCVBUF else f"granted {fit.granted}")
    if fit.datagrams is None:
        lines.append(f"quic-go's 7.5 MB ({QUIC_GO_RCVBUF}): {capped}; nothing was queued to "
                     "measure a datagram's share of the buffer")
    else:
        verdict = "enough" if fit.enough_for_this_burst else "not enough"
        lines.append(
            f"quic-go's 7.5 MB ({QUIC_GO_RCVBUF}): {capped}, which holds {fit.datagrams:,} "
            f"datagrams of {report.config.datagram_size} bytes ({fit.payload_bytes / 1e6:.1f} MB "
            f"of payload): a burst of that many, or the receiver stalled "
            f"{fit.stall_ms:,.0f} ms at {report.config.rate_bps / 1e6:g} Mbit/s; "
            f"{verdict} for bursts of {report.config.burst}")
    return lines


def plot(report: RcvbufReport, filename: str) -> None:
    """A PNG against the requested size: dropped % and time in the queue
    (p50, p99), with net.core.rmem_max and quic-go's 7.5 MB marked."""
    results = sorted(report.results, key=lambda r: r.requested)
    sizes = [r.requested for r in results]
    figure = figure_class()(figsize=(8, 7), constrained_layout=True)
    drops_axes, queue_axes = figure.subplots(2, 1, sharex=True)
    drops_axes.plot(sizes, [r.drop_pct for r in results], "o-")
    drops_axes.set_ylabel("datagrams dropped (%)")
    drops_axes.set_ylim(0, max(1.0, 1.1 * max(r.drop_pct for r in results)))
    queue_axes.plot(sizes, [r.queue_p50_ms for r in results], "o-", label="p50")
    queue_axes.plot(sizes, [r.queue_p99_ms for r in results], "x--", label="p99")
    queue_axes.set_yscale("log")
    from matplotlib.ticker import FuncFormatter

    queue_axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    # Labels at 2 and 5 of each decade too.
    queue_axes.yaxis.set_minor_formatter(
        FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))
    queue_axes.set_ylabel("time in the receive queue (ms)")
    queue_axes.set_xscale("log", base=2)
    # A size that is no whole number of KiB (quic-go's 7500000) reads better in MB.
    queue_axes.set_xticks(sizes, [format_size(size) if size % 1024 == 0 else f"{size / 1e6:g}MB"
                                  for size in sizes])
    queue_axes.set_xlabel("SO_RCVBUF requested (bytes; the kernel grants twice it)")
    for axes in (drops_axes, queue_axes):
        axes.axvline(QUIC_GO_RCVBUF, color="gray", linestyle=":", label="quic-go 7.5 MB")
        if report.rmem_max < max(sizes) and not report.config.force:
            axes.axvline(report.rmem_max, color="red", linestyle=":",
                         label="net.core.rmem_max (caps beyond)")
        axes.grid(True, which="both", alpha=0.3)
    queue_axes.legend(fontsize="small")
    config = report.config
    drops_axes.set_title(
        f"sockdiag bench rcvbuf: {config.rate_bps / 1e6:g} Mbit/s, bursts of {config.burst} x "
        f"{config.datagram_size} B, {config.service_us} us per datagram, kernel {report.kernel}",
        fontsize="medium")
    try:
        figure.savefig(filename, dpi=100)
    except OSError as err:
        raise SockdiagError(f"cannot write the plot to {filename}: {err.strerror}") from err
