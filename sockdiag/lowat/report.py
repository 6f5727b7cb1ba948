"""What a sweep tells: the table, the recommendation, the JSON document, the plot."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Optional

from tabulate import tabulate

from .._common import NotSupported, Record, SockdiagError
from .sweep import LowatResult
from .topology import PathInfo
from .units import format_size

# A setting qualifies when its goodput is within this fraction of the best.
GOODPUT_TOLERANCE = 0.02


@dataclass(frozen=True, slots=True)
class Recommendation(Record):
    """The lowat with the lowest median latency among the settings whose
    goodput is within 2% of the best one's.

    ``latency_vs_off``: how many times lower its latency p50 is than with
    lowat off (same cc and send buffer), None when off was not measured.
    """

    lowat: Optional[int]
    cc: str
    sndbuf: Optional[int]
    latency_p50_ms: float
    latency_p99_ms: Optional[float]
    throughput_bps: float
    best_throughput_bps: float
    latency_vs_off: Optional[float]


def recommend(results: list[LowatResult]) -> Optional[Recommendation]:
    """The recommendation (see Recommendation); None without usable results."""
    usable = [r for r in results if r.throughput_bps and r.latency_p50_ms is not None]
    if not usable:
        return None
    best_bps = max(r.throughput_bps for r in usable)
    eligible = [r for r in usable if r.throughput_bps >= (1 - GOODPUT_TOLERANCE) * best_bps]
    chosen = min(eligible, key=lambda r: (r.latency_p50_ms, r.latency_p99_ms or 0.0))
    off = [r for r in usable
           if r.lowat is None and r.cc == chosen.cc and r.sndbuf == chosen.sndbuf]
    ratio = off[0].latency_p50_ms / chosen.latency_p50_ms if off and chosen.latency_p50_ms else None
    return Recommendation(
        lowat=chosen.lowat, cc=chosen.cc, sndbuf=chosen.sndbuf,
        latency_p50_ms=chosen.latency_p50_ms, latency_p99_ms=chosen.latency_p99_ms,
        throughput_bps=chosen.throughput_bps, best_throughput_bps=best_bps,
        latency_vs_off=ratio)


def describe_path(info: PathInfo) -> str:
    """One line: what the figures were measured over."""
    if info.kind == "loopback":
        return f"path: loopback, no bottleneck (kernel {info.kernel})"
    delay = f", netem delay {info.delay_ms:g} ms on the ACK path" if info.delay_ms else ""
    wmem = f", tcp_wmem {' '.join(map(str, info.tcp_wmem))}" if info.tcp_wmem else ""
    return (f"path: sender -> router -> receiver, TBF {info.rate_bps / 1e6:g} Mbit/s "
            f"(queue {info.queue_latency_ms:g} ms) on the router's egress{delay} "
            f"(kernel {info.kernel}{wmem})")


def _number(value: Optional[float], digits: int = 1, scale: float = 1.0) -> str:
    return "-" if value is None else f"{value / scale:,.{digits}f}"


_COLUMNS = (
    ("cc", lambda r: r.cc),
    ("sndbuf", lambda r: format_size(r.sndbuf, "auto")),
    ("lowat", lambda r: format_size(r.lowat)),
    ("goodput\nMbit/s", lambda r: _number(r.throughput_bps, 2, 1e6)),
    ("latency\np50 ms", lambda r: _number(r.latency_p50_ms)),
    ("latency\np99 ms", lambda r: _number(r.latency_p99_ms)),
    ("write->sched\np50 ms", lambda r: _number(r.sched_p50_ms)),
    ("write->ack\np50 ms", lambda r: _number(r.ack_p50_ms)),
    ("unsent\np50 KiB", lambda r: _number(r.unsent_p50_bytes, 1, 1024)),
    ("unacked\np50 KiB", lambda r: _number(r.unacked_p50_bytes, 1, 1024)),
    ("sock mem\np50 KiB", lambda r: _number(r.sock_mem_p50_bytes, 0, 1024)),
    ("rtt\np50 ms", lambda r: _number(r.rtt_p50_ms)),
    ("retrans\n%", lambda r: _number(r.retrans_pct, 2)),
    ("cpu\ns", lambda r: _number(r.cpu_s, 3)),
    ("ctx\nswitches", lambda r: _number(r.ctx_switches, 0)),
    ("sends\n/MB", lambda r: _number(r.send_calls_per_mb, 0)),
    ("EAGAIN\n/MB", lambda r: _number(r.eagains_per_mb, 1)),
    ("wakeups\n/MB", lambda r: _number(r.wakeups_per_mb, 1)),
)


def table(results: list[LowatResult]) -> str:
    """The results as a table for people (medians over the repeats)."""
    rows = [[cell(result) for _, cell in _COLUMNS] for result in results]
    return tabulate(rows, headers=[name for name, _ in _COLUMNS], disable_numparse=True,
                    colalign=("left", "right", "right") + ("right",) * (len(_COLUMNS) - 3))


def recommendation_line(recommendation: Optional[Recommendation]) -> str:
    """The recommendation in one sentence."""
    if recommendation is None:
        return "recommendation: none (no run delivered data)"
    versus_off = (f", {recommendation.latency_vs_off:.1f}x lower than off"
                  if recommendation.latency_vs_off else "")
    return (f"recommendation: lowat {format_size(recommendation.lowat)} "
            f"({recommendation.cc}, sndbuf {format_size(recommendation.sndbuf, 'auto')}): "
            f"latency p50 {recommendation.latency_p50_ms:.1f} ms{versus_off}, "
            f"p99 {_number(recommendation.latency_p99_ms)} ms, "
            f"goodput {recommendation.throughput_bps / 1e6:.2f} Mbit/s "
            f"(best {recommendation.best_throughput_bps / 1e6:.2f}; "
            f"lowest latency within {GOODPUT_TOLERANCE:.0%} of it)")


def document(info: PathInfo, config: Record, results: list[LowatResult],
             recommendation: Optional[Recommendation]) -> dict:
    """The sweep as one JSON-ready dict: path, config, results, recommendation."""
    return {
        "path": info.asdict(),
        "config": config.asdict(),
        "results": [result.asdict() for result in results],
        "recommendation": None if recommendation is None else recommendation.asdict(),
    }


def check_plotting() -> None:
    """NotSupported unless matplotlib can be imported (checked before a sweep)."""
    if importlib.util.find_spec("matplotlib") is None:
        raise NotSupported("--plot needs matplotlib: pip install 'sockdiag[plot]'")


def plot(results: list[LowatResult], info: PathInfo, filename: str) -> None:
    """A PNG: latency p50/p99 and goodput against lowat, one line per cc."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    from matplotlib import pyplot

    # Off first, then ever smaller limits: left to right, less is buffered.
    lowats = sorted({r.lowat for r in results}, key=lambda v: float("-inf") if v is None else -v)
    positions = {lowat: i for i, lowat in enumerate(lowats)}
    several_sndbufs = len({r.sndbuf for r in results}) > 1
    figure, (latency_axes, goodput_axes) = pyplot.subplots(
        2, 1, sharex=True, figsize=(8, 6.5), constrained_layout=True)
    lines = sorted({(r.cc, r.sndbuf) for r in results}, key=lambda k: (k[0], k[1] or 0))
    for cc, sndbuf in lines:
        series = sorted((r for r in results if r.cc == cc and r.sndbuf == sndbuf),
                        key=lambda r: positions[r.lowat])
        x = [positions[r.lowat] for r in series]
        label = f"{cc}, sndbuf {format_size(sndbuf, 'auto')}" if several_sndbufs else cc
        drawn = latency_axes.plot(x, [r.latency_p50_ms for r in series], "o-", label=f"{label} p50")
        latency_axes.plot(x, [r.latency_p99_ms for r in series], "x--",
                          color=drawn[0].get_color(), label=f"{label} p99")
        goodput_axes.plot(x, [(r.throughput_bps or 0) / 1e6 for r in series], "o-",
                          color=drawn[0].get_color(), label=label)
    latency_axes.set_yscale("log")
    # Plain numbers on the log axis: labels at 1, 2 and 5 of each decade.
    latency_axes.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    latency_axes.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
        lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))
    latency_axes.set_ylabel("application latency (ms)")
    latency_axes.legend(fontsize="small")
    latency_axes.grid(True, which="both", alpha=0.3)
    goodput_axes.set_ylabel("goodput (Mbit/s)")
    goodput_axes.set_ylim(0, 1.1 * max((r.throughput_bps or 0) / 1e6 for r in results) or 1)
    goodput_axes.grid(True, alpha=0.3)
    goodput_axes.set_xticks(range(len(lowats)), [format_size(v) for v in lowats])
    goodput_axes.set_xlabel("TCP_NOTSENT_LOWAT")
    title = ("loopback, no bottleneck" if info.kind == "loopback"
             else f"TBF {info.rate_bps / 1e6:g} Mbit/s, queue {info.queue_latency_ms:g} ms")
    latency_axes.set_title(f"sockdiag bench lowat: {title}, kernel {info.kernel}")
    try:
        figure.savefig(filename, dpi=100)
    except OSError as err:
        raise SockdiagError(f"cannot write the plot to {filename}: {err.strerror}") from err
    finally:
        pyplot.close(figure)
