"""TCP_NOTSENT_LOWAT tuning benchmark (``sockdiag bench lowat``).  Linux only.

A sender writes 4 KiB messages stamped with CLOCK_MONOTONIC as fast as the
kernel lets it, to a receiver behind a shaped bottleneck (see topology),
once per bottleneck rate and setting of TCP_NOTSENT_LOWAT (bytes, off, or
a time target kept by sockdiag.LowatTuner), congestion control and send
buffer.
Each run reports how long messages took to arrive, how long written bytes
waited in the socket (SO_TIMESTAMPING), goodput, where the bytes were
(``sockdiag.send_buffer`` every 10 ms) and what the sender paid for it.

    from sockdiag.lowat import SweepConfig, benchmark
    report = benchmark(SweepConfig(...), queue_latency_us=50_000, delay_us=40_000)
"""

from __future__ import annotations

import os
from typing import Callable, Optional

from .. import _platform
from .._common import LINUX, FrozenStruct
from .._exceptions import NotSupported
from .report import Recommendation, recommend
from .sweep import LowatResult, Setting, SweepConfig, run_sweep, settings
from .topology import PathInfo, open_path

__all__ = [
    "LowatResult",
    "PathInfo",
    "Recommendation",
    "Report",
    "Setting",
    "SweepConfig",
    "available_ccs",
    "benchmark",
    "default_cc",
    "run_count",
]


class Report(FrozenStruct):
    """A finished sweep: the path, the settings' medians and one recommendation per rate."""

    path: PathInfo
    config: SweepConfig
    results: tuple[LowatResult, ...]
    recommendations: tuple[Recommendation, ...]


def _sysctl_words(name: str) -> list[str]:
    if not LINUX:  # the congestion controls are Linux's sysctls
        raise NotSupported("sockdiag bench lowat runs on Linux only")
    return _platform.sysctl(name).split()


def available_ccs() -> list[str]:
    """Congestion controls this kernel offers (net.ipv4.tcp_available_congestion_control)."""
    return _sysctl_words("net.ipv4.tcp_available_congestion_control")


def default_cc() -> str:
    """bbr when this user may use it, else the system's default congestion control."""
    if os.geteuid() == 0:
        usable = available_ccs()
    else:
        usable = _sysctl_words("net.ipv4.tcp_allowed_congestion_control")
    return "bbr" if "bbr" in usable else _sysctl_words("net.ipv4.tcp_congestion_control")[0]


def benchmark(config: SweepConfig, queue_latency_us: int, delay_us: int,
              on_path: Optional[Callable[[PathInfo], None]] = None,
              on_run: Optional[Callable[[Setting], None]] = None) -> Report:
    """Build the path, run the sweep, remove the path; the Report.

    config.rates_bps and queue_latency_us shape the bottleneck; delay_us is
    added on the ACK path with netem, or the user-space delay line where
    the kernel has no netem (RateAboveCeiling for a rate it cannot keep up
    with).  on_path is called once the path exists (its notices say what
    is missing), on_run after each run.  The path is removed on return, on
    error and on Ctrl-C/SIGTERM/SIGHUP.
    """
    with open_path(config.rates_bps, queue_latency_us, delay_us) as path:
        if on_path is not None:
            on_path(path.info)
        results = run_sweep(path, config, on_run)
    return Report(path.info, config, tuple(results), tuple(recommend(results)))


def run_count(config: SweepConfig, info: PathInfo) -> int:
    """How many runs a sweep makes over the path (settings x repeats)."""
    return len(settings(config, shaped=info.kind == "shaped")) * config.repeat
