"""What a sweep tells: the table, the recommendation, the JSON document, the plot."""

from __future__ import annotations

from typing import Optional, Sequence, Union

from .._common import FrozenStruct, figure_class
from .._exceptions import SockdiagError
from ..fields import figure_table, format_figure
from .sweep import LowatResult
from .topology import PathInfo
from .._validate import format_size
from .units import lowat_target_ms

# A setting qualifies when its goodput is within this fraction of the best.
GOODPUT_TOLERANCE = 0.02


class Recommendation(FrozenStruct):
    """At one bottleneck rate, the lowat with the lowest median latency
    among the settings whose goodput is within 2% of the best one's.

    ``latency_vs_off``: how many times lower its latency p50 is than with
    lowat off (same cc and send buffer), None when off was not measured.
    """

    rate_bps: Optional[int]
    lowat: Union[None, int, str]
    cc: str
    sndbuf: Optional[int]
    latency_p50_ms: float
    latency_p99_ms: Optional[float]
    throughput_bps: float
    best_throughput_bps: float
    latency_vs_off: Optional[float]


def recommend(results: list[LowatResult]) -> list[Recommendation]:
    """One recommendation per rate (see Recommendation), for the rates with usable results."""
    rates = dict.fromkeys(r.rate_bps for r in results)
    chosen = (_recommend_at([r for r in results if r.rate_bps == rate]) for rate in rates)
    return [recommendation for recommendation in chosen if recommendation is not None]


def _recommend_at(results: list[LowatResult]) -> Optional[Recommendation]:
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
        rate_bps=chosen.rate_bps, lowat=chosen.lowat, cc=chosen.cc, sndbuf=chosen.sndbuf,
        latency_p50_ms=chosen.latency_p50_ms, latency_p99_ms=chosen.latency_p99_ms,
        throughput_bps=chosen.throughput_bps, best_throughput_bps=best_bps,
        latency_vs_off=ratio)


def describe_path(info: PathInfo) -> str:
    """One line: what the figures were measured over."""
    if info.kind == "loopback":
        return f"path: loopback, no bottleneck (kernel {info.kernel})"
    delay = (f", {info.delay_ms:g} ms delay on the ACK path ({info.delay_via})"
             if info.delay_ms else ", no base delay")
    wmem = f", tcp_wmem {' '.join(map(str, info.tcp_wmem))}" if info.tcp_wmem else ""
    rates = " / ".join(f"{rate / 1e6:g}" for rate in info.rates_bps)
    return (f"path: sender -> router -> receiver, TBF {rates} Mbit/s "
            f"(queue {info.queue_latency_ms:g} ms) on the router's egress{delay} "
            f"(kernel {info.kernel}{wmem})")


_COLUMNS = (
    ("rate\nMbit/s", lambda r: "-" if r.rate_bps is None else f"{r.rate_bps / 1e6:g}"),
    ("cc", lambda r: r.cc),
    ("sndbuf", lambda r: format_size(r.sndbuf, "auto")),
    ("lowat", lambda r: format_size(r.lowat)),
    ("lowat\np50 KiB", lambda r: format_figure(r.lowat_p50_bytes, 1, 1024)),
    ("goodput\nMbit/s", lambda r: format_figure(r.throughput_bps, 2, 1e6)),
    ("latency\np50 ms", lambda r: format_figure(r.latency_p50_ms)),
    ("latency\np99 ms", lambda r: format_figure(r.latency_p99_ms)),
    ("write->sched\np50 ms", lambda r: format_figure(r.sched_p50_ms)),
    ("write->ack\np50 ms", lambda r: format_figure(r.ack_p50_ms)),
    ("unsent\np50 KiB", lambda r: format_figure(r.unsent_p50_bytes, 1, 1024)),
    ("unacked\np50 KiB", lambda r: format_figure(r.unacked_p50_bytes, 1, 1024)),
    ("sock mem\np50 KiB", lambda r: format_figure(r.sock_mem_p50_bytes, 0, 1024)),
    ("rtt\np50 ms", lambda r: format_figure(r.rtt_p50_ms)),
    ("retrans\n%", lambda r: format_figure(r.retrans_pct, 2)),
    ("cpu\ns", lambda r: format_figure(r.cpu_s, 3)),
    ("ctx\nswitches", lambda r: format_figure(r.ctx_switches, 0)),
    ("sends\n/MB", lambda r: format_figure(r.send_calls_per_mb, 0)),
    ("EAGAIN\n/MB", lambda r: format_figure(r.eagains_per_mb, 1)),
    ("wakeups\n/MB", lambda r: format_figure(r.wakeups_per_mb, 1)),
)


def table(results: list[LowatResult]) -> str:
    """The results as a table for people (medians over the repeats)."""
    return figure_table(_COLUMNS, results, left_aligned=("cc",))


def recommendation_lines(recommendations: Sequence[Recommendation]) -> list[str]:
    """Each rate's recommendation in one sentence."""
    if not recommendations:
        return ["recommendation: none (no run delivered data)"]
    return [_recommendation_line(recommendation) for recommendation in recommendations]


def _recommendation_line(recommendation: Recommendation) -> str:
    versus_off = (f", {recommendation.latency_vs_off:.1f}x lower than off"
                  if recommendation.latency_vs_off else "")
    rate = ("" if recommendation.rate_bps is None
            else f" at {recommendation.rate_bps / 1e6:g} Mbit/s")
    return (f"recommendation{rate}: lowat {format_size(recommendation.lowat)} "
            f"({recommendation.cc}, sndbuf {format_size(recommendation.sndbuf, 'auto')}): "
            f"latency p50 {recommendation.latency_p50_ms:.1f} ms{versus_off}, "
            f"p99 {format_figure(recommendation.latency_p99_ms)} ms, "
            f"goodput {recommendation.throughput_bps / 1e6:.2f} Mbit/s "
            f"(best {recommendation.best_throughput_bps / 1e6:.2f}; "
            f"lowest latency within {GOODPUT_TOLERANCE:.0%} of it)")


def document(info: PathInfo, config: FrozenStruct, results: Sequence[LowatResult],
             recommendations: Sequence[Recommendation]) -> dict:
    """The sweep as one JSON-ready dict: path, config, results, recommendations (one per rate)."""
    return {
        "path": info.asdict(),
        "config": config.asdict(),
        "results": [result.asdict() for result in results],
        "recommendations": [recommendation.asdict() for recommendation in recommendations],
    }


def _lowat_order(lowat: Union[None, int, str]) -> tuple:
    """Off first, then ever smaller byte limits, then time targets, largest first."""
    if lowat is None:
        return (0, 0.0)
    if isinstance(lowat, str):
        return (2, -lowat_target_ms(lowat))
    return (1, -lowat)


def plot(results: Sequence[LowatResult], info: PathInfo, filename: str) -> None:
    """A PNG against lowat: latency p50/p99, write->SCHED p50, goodput (in % of the
    bottleneck rate) and wakeups per MB; one line per rate (and cc, sndbuf)."""
    figure = figure_class()(figsize=(8, 11), constrained_layout=True)
    from matplotlib.ticker import FuncFormatter

    lowats = sorted({r.lowat for r in results}, key=_lowat_order)
    positions = {lowat: i for i, lowat in enumerate(lowats)}
    several = {name: len({getattr(r, name) for r in results}) > 1
               for name in ("rate_bps", "cc", "sndbuf")}
    axes = figure.subplots(4, 1, sharex=True)
    latency_axes, sched_axes, goodput_axes, wakeup_axes = axes
    lines = sorted({(r.rate_bps, r.cc, r.sndbuf) for r in results},
                   key=lambda k: (k[0] or 0, k[1], k[2] or 0))
    for rate, cc, sndbuf in lines:
        series = sorted((r for r in results if (r.rate_bps, r.cc, r.sndbuf) == (rate, cc, sndbuf)),
                        key=lambda r: positions[r.lowat])
        x = [positions[r.lowat] for r in series]
        words = []
        if several["rate_bps"] or rate is not None:
            words.append("loopback" if rate is None else f"{rate / 1e6:g} Mbit/s")
        if several["cc"] or not words:
            words.append(cc)
        if several["sndbuf"]:
            words.append(f"sndbuf {format_size(sndbuf, 'auto')}")
        label = ", ".join(words)
        drawn = latency_axes.plot(x, [r.latency_p50_ms for r in series], "o-", label=f"{label} p50")
        color = drawn[0].get_color()
        latency_axes.plot(x, [r.latency_p99_ms for r in series], "x--", color=color,
                          label=f"{label} p99")
        sched_axes.plot(x, [r.sched_p50_ms for r in series], "o-", color=color, label=label)
        goodput = [None if r.throughput_bps is None else
                   r.throughput_bps / 1e6 if rate is None else 100 * r.throughput_bps / rate
                   for r in series]
        goodput_axes.plot(x, goodput, "o-", color=color, label=label)
        wakeup_axes.plot(x, [r.wakeups_per_mb for r in series], "o-", color=color, label=label)
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    # Labels at 1, 2 and 5 of each decade on the log axes.
    minor = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else "")
    for log_axes, label in ((latency_axes, "application latency (ms)"),
                            (sched_axes, "write->SCHED p50 (ms)"),
                            (wakeup_axes, "wakeups per MB")):
        log_axes.set_yscale("log")
        log_axes.yaxis.set_major_formatter(plain)
        log_axes.yaxis.set_minor_formatter(minor)
        log_axes.set_ylabel(label)
        log_axes.grid(True, which="both", alpha=0.3)
    latency_axes.legend(fontsize="x-small", ncol=2)
    shaped = info.kind == "shaped"
    goodput_axes.set_ylabel("goodput (% of the rate)" if shaped else "goodput (Mbit/s)")
    goodput_axes.set_ylim(0, 110 if shaped else
                          1.1 * max((r.throughput_bps or 0) / 1e6 for r in results) or 1)
    goodput_axes.grid(True, alpha=0.3)
    wakeup_axes.set_xticks(range(len(lowats)), [format_size(v) for v in lowats])
    wakeup_axes.set_xlabel("TCP_NOTSENT_LOWAT (bytes, or a time target kept by LowatTuner)")
    if shaped:
        delay = f", {info.delay_ms:g} ms delay ({info.delay_via})" if info.delay_ms else ""
        title = f"TBF queue {info.queue_latency_ms:g} ms{delay}"
    else:
        title = "loopback, no bottleneck"
    latency_axes.set_title(f"sockdiag bench lowat: {title}, kernel {info.kernel}", fontsize="medium")
    try:
        figure.savefig(filename, dpi=100)
    except OSError as err:
        raise SockdiagError(f"cannot write the plot to {filename}: {err.strerror}") from err
