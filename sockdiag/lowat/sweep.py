"""The sweep: every (cc, send buffer, lowat) setting, repeated, with medians."""

from __future__ import annotations

import time
from typing import Callable, Optional, Union

from .._common import FrozenStruct
from ..stats import median_or_none
from .topology import READY_TIMEOUT_S, Path
from .._validate import format_size

_START_DELAY_NS = 50_000_000
# After stop_at: the receiver's grace before it closes, plus reporting.
_RESULT_TIMEOUT_S = 15.0


class SweepConfig(FrozenStruct):
    """What to sweep and how long each run lasts.

    ``lowats``: TCP_NOTSENT_LOWAT values in bytes, None for off, or a time
    target such as "20ms" (the sender's LowatTuner keeps the limit at
    delivery rate × target).
    ``rates_bps``: bottleneck rates to sweep (the TBF on the router).
    ``sndbufs``: SO_SNDBUF values in bytes, None for kernel auto-tuning.
    ``writer``: "eagain" (write until the kernel refuses, per wakeup) or
    "epollout" (one message per EPOLLOUT wakeup).
    ``duration_s``: each run's length; the first ``warmup_s`` are not counted.
    ``nodelay``: set TCP_NODELAY (no Nagle) on the sender's sockets.
    ``stamp_every``: one write in this many asks for SO_TIMESTAMPING stamps.
    ``eor``: every write carries MSG_EOR (else only the stamped ones), so
    that the kernel appends no later write to its skb past the limit.
    """

    lowats: tuple[Union[None, int, str], ...]
    rates_bps: tuple[int, ...]
    ccs: tuple[str, ...]
    sndbufs: tuple[Optional[int], ...]
    writer: str
    duration_s: float
    warmup_s: float
    repeat: int
    flows: int
    message_size: int
    nodelay: bool = False
    stamp_every: int = 8
    eor: bool = True


class LowatResult(FrozenStruct):
    """One setting's figures: medians over the repeats of each run's figures.

    Latencies in ms: ``latency_*`` from the write of a message to the
    receiver's read of its last byte; ``sched_*`` from a write to its last
    byte entering the qdisc (time spent unsent in the socket); ``ack_p50_ms``
    from a write to its acknowledgement (SO_TIMESTAMPING; None where the
    kernel gave none).  ``throughput_bps``: goodput while the sender was
    active.  Send-buffer figures are medians of 10 ms samples, per flow;
    ``sock_mem_p50_bytes`` is the send-side memory (wmem_queued) of all
    flows together.  ``retrans_pct``: bytes retransmitted, in percent of
    bytes sent (TCP_INFO).  ``cpu_s`` and ``ctx_switches`` (voluntary) are the
    sender's over the measured window; the ``*_per_mb`` counts are per
    megabyte (10**6 bytes) written.  ``rate_bps``: the bottleneck rate
    (None on loopback).  ``lowat_p50_bytes``, ``lowat_updates_per_mb`` and
    ``lowat_changes_per_mb``: for a time target, the limit the tuner kept
    (median of 10 ms samples), its TCP_INFO reads and the changes of the
    limit per MB; None for fixed settings.
    """

    rate_bps: Optional[int]
    lowat: Union[None, int, str]
    cc: str
    sndbuf: Optional[int]
    writer: str
    flows: int
    repeats: int
    throughput_bps: Optional[float]
    latency_p50_ms: Optional[float]
    latency_p99_ms: Optional[float]
    sched_p50_ms: Optional[float]
    sched_p99_ms: Optional[float]
    ack_p50_ms: Optional[float]
    unsent_p50_bytes: Optional[float]
    unacked_p50_bytes: Optional[float]
    sndbuf_p50_bytes: Optional[float]
    sock_mem_p50_bytes: Optional[float]
    rtt_p50_ms: Optional[float]
    retrans_pct: Optional[float]
    cpu_s: Optional[float]
    ctx_switches: Optional[float]
    send_calls_per_mb: Optional[float]
    eagains_per_mb: Optional[float]
    wakeups_per_mb: Optional[float]
    lowat_p50_bytes: Optional[float]
    lowat_updates_per_mb: Optional[float]
    lowat_changes_per_mb: Optional[float]


_NAMES = LowatResult._fields
_MEASURED = _NAMES[_NAMES.index("repeats") + 1:]


class Setting(FrozenStruct):
    """One cell of the sweep (rate_bps None: loopback, no bottleneck)."""

    rate_bps: Optional[int]
    cc: str
    sndbuf: Optional[int]
    lowat: Union[None, int, str]

    @property
    def label(self) -> str:
        """The setting in words: "10 Mbit/s bbr sndbuf auto lowat 16k"."""
        sndbuf = format_size(self.sndbuf, "auto")
        rate = "" if self.rate_bps is None else f"{self.rate_bps / 1e6:g} Mbit/s "
        return f"{rate}{self.cc} sndbuf {sndbuf} lowat {format_size(self.lowat)}"


def settings(config: SweepConfig, shaped: bool = True) -> list[Setting]:
    """Every cell, in the order the table shows them (one rate, None, on loopback)."""
    rates = config.rates_bps if shaped else (None,)
    return [Setting(rate, cc, sndbuf, lowat) for rate in rates
            for cc in config.ccs for sndbuf in config.sndbufs for lowat in config.lowats]


def run_once(path: Path, config: SweepConfig, setting: Setting) -> dict:
    """One run of one setting: the sender's and the receiver's figures merged."""
    common = {"flows": config.flows, "message_size": config.message_size}
    receiver = path.spawn("receive", dict(common, host=path.receiver_host, port=0))
    sender = None
    try:
        port = receiver.read_message(time.monotonic() + READY_TIMEOUT_S, "receiver")["port"]
        sender = path.spawn("send", dict(
            common, host=path.receiver_host, port=port, cc=setting.cc, sndbuf=setting.sndbuf,
            lowat=setting.lowat, writer=config.writer, nodelay=config.nodelay,
            stamp_every=config.stamp_every, eor=config.eor))
        sender.read_message(time.monotonic() + READY_TIMEOUT_S, "sender")
        start_at = time.monotonic_ns() + _START_DELAY_NS
        schedule = {
            "start_at_ns": start_at,
            "measure_from_ns": start_at + round(config.warmup_s * 1e9),
            "stop_at_ns": start_at + round(config.duration_s * 1e9),
        }
        for child in (receiver, sender):
            child.send_message(schedule)
        deadline = time.monotonic() + config.duration_s + _RESULT_TIMEOUT_S
        sent = sender.read_message(deadline, "sender")
        received = receiver.read_message(deadline, "receiver")
    finally:
        for child in (sender, receiver):
            if child is not None:
                path.end(child)
    return dict(sent, **received)


def _median_result(config: SweepConfig, setting: Setting, runs: list[dict]) -> LowatResult:
    return LowatResult(
        rate_bps=setting.rate_bps, lowat=setting.lowat, cc=setting.cc, sndbuf=setting.sndbuf, writer=config.writer,
        flows=config.flows, repeats=len(runs),
        **{name: median_or_none([run.get(name) for run in runs]) for name in _MEASURED})


def run_sweep(path: Path, config: SweepConfig,
              progress: Optional[Callable[[Setting], None]] = None) -> list[LowatResult]:
    """Run every setting config.repeat times; one LowatResult (medians) per setting.

    Repeats are interleaved (all settings once, then again) so that slow
    drift on the machine spreads over every setting.  The bottleneck's rate
    changes between cells of different rates.  progress is called after
    each run with the setting it ran.
    """
    cells = settings(config, shaped=path.info.kind == "shaped")
    runs: dict[Setting, list[dict]] = {cell: [] for cell in cells}
    for _ in range(config.repeat):
        rate = None
        for cell in cells:
            if cell.rate_bps != rate:
                rate = cell.rate_bps
                path.set_rate(rate)
            runs[cell].append(run_once(path, config, cell))
            if progress is not None:
                progress(cell)
    return [_median_result(config, cell, runs[cell]) for cell in cells]
