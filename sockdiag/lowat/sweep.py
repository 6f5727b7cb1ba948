"""The sweep: every (cc, send buffer, lowat) setting, repeated, with medians."""

from __future__ import annotations

import json
import select
import time
from dataclasses import dataclass, fields
from typing import Callable, Optional

from .._common import Record, SockdiagError
from .stats import median_or_none
from .topology import Path, Worker
from .units import format_size

# Time for a forked worker to set up its sockets.
_READY_TIMEOUT_S = 30.0
_START_DELAY_NS = 50_000_000
# After stop_at: the receiver's grace before it closes, plus reporting.
_RESULT_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class SweepConfig(Record):
    """What to sweep and how long each run lasts.

    ``lowats``: TCP_NOTSENT_LOWAT values in bytes, None for off.
    ``sndbufs``: SO_SNDBUF values in bytes, None for kernel auto-tuning.
    ``writer``: "eagain" (write until the kernel refuses, per wakeup) or
    "epollout" (one message per EPOLLOUT wakeup).
    ``duration_s``: each run's length; the first ``warmup_s`` are not counted.
    ``nodelay``: set TCP_NODELAY (no Nagle) on the sender's sockets.
    ``stamp_every``: one write in this many asks for SO_TIMESTAMPING stamps.
    """

    lowats: tuple[Optional[int], ...]
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


@dataclass(frozen=True, slots=True)
class LowatResult(Record):
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
    megabyte (10**6 bytes) written.
    """

    lowat: Optional[int]
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


_MEASURED = tuple(field.name for field in fields(LowatResult))[6:]


@dataclass(frozen=True, slots=True)
class Setting(Record):
    """One cell of the sweep."""

    cc: str
    sndbuf: Optional[int]
    lowat: Optional[int]

    @property
    def label(self) -> str:
        """The setting in words: "bbr sndbuf auto lowat 16k"."""
        sndbuf = format_size(self.sndbuf, "auto")
        return f"{self.cc} sndbuf {sndbuf} lowat {format_size(self.lowat)}"


def settings(config: SweepConfig) -> list[Setting]:
    """Every cell, in the order the table shows them."""
    return [Setting(cc, sndbuf, lowat)
            for cc in config.ccs for sndbuf in config.sndbufs for lowat in config.lowats]


def _read_line(child: Worker, deadline: float, what: str) -> dict:
    """One JSON line from a worker, or SockdiagError saying what went wrong."""
    remaining = deadline - time.monotonic()
    ready, _, _ = select.select([child.from_worker], [], [], max(0.0, remaining))
    if not ready:
        raise SockdiagError(f"the {what} did not answer in time")
    line = child.from_worker.readline()
    if not line:
        raise SockdiagError(f"the {what} ended without a result ({child.describe_exit()})")
    message = json.loads(line)
    if "error" in message:
        raise SockdiagError(message["error"])
    return message


def _send_line(child: Worker, message: dict) -> None:
    child.to_worker.write(json.dumps(message) + "\n")
    child.to_worker.flush()


def run_once(path: Path, config: SweepConfig, setting: Setting) -> dict:
    """One run of one setting: the sender's and the receiver's figures merged."""
    common = {"flows": config.flows, "message_size": config.message_size}
    receiver = path.spawn("receive", dict(common, host=path.receiver_host, port=0))
    sender = None
    try:
        port = _read_line(receiver, time.monotonic() + _READY_TIMEOUT_S, "receiver")["port"]
        sender = path.spawn("send", dict(
            common, host=path.receiver_host, port=port, cc=setting.cc, sndbuf=setting.sndbuf,
            lowat=setting.lowat, writer=config.writer, nodelay=config.nodelay,
            stamp_every=config.stamp_every))
        _read_line(sender, time.monotonic() + _READY_TIMEOUT_S, "sender")
        start_at = time.monotonic_ns() + _START_DELAY_NS
        schedule = {
            "start_at_ns": start_at,
            "measure_from_ns": start_at + round(config.warmup_s * 1e9),
            "stop_at_ns": start_at + round(config.duration_s * 1e9),
        }
        for child in (receiver, sender):
            _send_line(child, schedule)
        deadline = time.monotonic() + config.duration_s + _RESULT_TIMEOUT_S
        sent = _read_line(sender, deadline, "sender")
        received = _read_line(receiver, deadline, "receiver")
    finally:
        for child in (sender, receiver):
            if child is not None:
                path.end(child)
    return dict(sent, **received)


def _median_result(config: SweepConfig, setting: Setting, runs: list[dict]) -> LowatResult:
    return LowatResult(
        lowat=setting.lowat, cc=setting.cc, sndbuf=setting.sndbuf, writer=config.writer,
        flows=config.flows, repeats=len(runs),
        **{name: median_or_none([run.get(name) for run in runs]) for name in _MEASURED})


def run_sweep(path: Path, config: SweepConfig,
              progress: Optional[Callable[[Setting], None]] = None) -> list[LowatResult]:
    """Run every setting config.repeat times; one LowatResult (medians) per setting.

    Repeats are interleaved (all settings once, then again) so that slow
    drift on the machine spreads over every setting.  progress is called
    after each run with the setting it ran.
    """
    cells = settings(config)
    runs: dict[Setting, list[dict]] = {cell: [] for cell in cells}
    for _ in range(config.repeat):
        for cell in cells:
            runs[cell].append(run_once(path, config, cell))
            if progress is not None:
                progress(cell)
    return [_median_result(config, cell, runs[cell]) for cell in cells]
