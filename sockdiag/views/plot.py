"""Pictures of recordings (``sockdiag plot FILE -o out.png``): timelines, one panel per quantity.

A watch recording gives, per connection, unsent, unacked, queue delay and
RTT, and the process's totals; a top recording each process's sent and
received rates and totals; an ifstat recording each interface's rates.
The recorder stays small; the analysis lives here (M-Lab's split).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

from .._common import figure_class
from .._exceptions import SockdiagError
from ..recording_file import RecordingReader, socket_info

MOST = 8  # lines per panel when no --connection is given: the busiest items


@dataclass(frozen=True, slots=True)
class Panel:
    """One panel: (item label -> (seconds, values)), its y label and the scale of its values."""

    title: str
    ylabel: str
    lines: dict[str, tuple[list[float], list[float]]]


@dataclass(frozen=True, slots=True)
class PlotSummary:
    """What was drawn: the recording's kind, samples in the window, items drawn of all."""

    kind: str
    samples: int
    items_drawn: int
    items: int


class _Series:
    """Per item and quantity, the (seconds, value) points of the samples in the window."""

    def __init__(self) -> None:
        self.points: dict[str, dict[str, tuple[list, list]]] = defaultdict(lambda: defaultdict(lambda: ([], [])))
        self.labels: dict[str, str] = {}

    def add(self, item: str, quantity: str, seconds: float, value) -> None:
        xs, ys = self.points[quantity][item]
        xs.append(seconds)
        ys.append(math.nan if value is None else value)

    def panel(self, quantity: str, title: str, ylabel: str, items: list[str], scale: float = 1.0) -> Panel:
        chosen = self.points.get(quantity, {})
        return Panel(title, ylabel, {self.labels.get(item, item): (chosen[item][0], [v * scale for v in chosen[item][1]])
                                     for item in items if item in chosen})


def _connection_label(item: dict) -> str:
    s = socket_info(item)
    return f"fd {s.fd} {s.local} > {s.remote}"


def _matches(wanted: str, key: str, item: dict, kind: str) -> bool:
    if kind == "watch":
        s = socket_info(item)
        return wanted in (key, str(s.fd), s.local, s.remote)
    return wanted == key or (kind == "top" and wanted == str(item.get("name")))


def panels(path: str, *, connection: Optional[str] = None, since: Optional[float] = None,
           until: Optional[float] = None) -> tuple[list[Panel], PlotSummary]:
    """The panels of a recording's picture.

    ``connection``: only this item: for a watch recording an fd, an inode or
    a local or remote address:port; a pid or process name for top; an
    interface name for ifstat.  ``since``/``until``: seconds from the
    recording's first sample.  Raises RecordingError (sockdiag.recording_file) for a bad recording
    and SockdiagError for an unknown connection or an empty window.
    """
    with RecordingReader(path) as reader:
        kind = reader.kind
        series = _Series()
        peaks: dict[str, float] = defaultdict(float)
        found: Optional[str] = None
        start = None
        samples = 0
        previous: dict[str, tuple[float, dict]] = {}
        for recorded in reader.samples():
            start = recorded.time if start is None else start
            seconds = recorded.time - start
            if until is not None and seconds > until:
                break
            in_window = since is None or seconds >= since
            for key, item in recorded.items.items():
                if connection is not None:
                    if found is None and _matches(connection, key, item, kind):
                        found = key
                    if key != found:
                        continue
                before = previous.get(key)
                previous[key] = (recorded.time, item)
                if not in_window:
                    continue
                _add_item(series, peaks, kind, key, item, seconds,
                          None if before is None else (recorded.time - before[0], before[1]))
            if in_window:
                _add_totals(series, kind, recorded, seconds)
                samples += 1
    if connection is not None and found is None:
        raise SockdiagError(f"no connection {connection!r} in {path}")
    if not samples:
        raise SockdiagError(f"{path}: no sample between --since and --until")
    items = sorted(peaks, key=peaks.get, reverse=True)
    # Items that never held a byte would only crowd the legend.
    drawn = [item for item in items if peaks[item] > 0][:MOST] or items[:MOST]
    return _layout(series, kind, drawn), PlotSummary(kind, samples, len(drawn), len(items))


def _add_item(series: _Series, peaks: dict, kind: str, key: str, item: dict, seconds: float,
              before: Optional[tuple[float, dict]]) -> None:
    if kind == "watch":
        series.labels[key] = _connection_label(item)
        for quantity in ("unsent", "unacked", "queue_delay_s", "tcp.rtt_us"):
            series.add(key, quantity, seconds, item.get(quantity))
        peaks[key] = max(peaks[key], (item.get("unsent") or 0) + (item.get("unacked") or 0))
    elif kind == "top":
        series.labels[key] = f"{key} {item.get('name') or ''}".strip()
        for quantity in ("sent_bytes_per_s", "received_bytes_per_s", "total_sent_bytes", "total_received_bytes"):
            series.add(key, quantity, seconds, item.get(quantity))
        peaks[key] = max(peaks[key], (item.get("total_sent_bytes") or 0) + (item.get("total_received_bytes") or 0))
    else:
        if before is None:
            return  # a rate needs two samples
        elapsed, old = before
        for quantity in ("rx_bytes", "tx_bytes"):
            new_value, old_value = item.get(quantity), old.get(quantity)
            rate = None if new_value is None or old_value is None or new_value < old_value or elapsed <= 0 \
                else (new_value - old_value) / elapsed
            series.add(key, quantity, seconds, rate)
            peaks[key] = max(peaks[key], rate or 0)


def _add_totals(series: _Series, kind: str, recorded, seconds: float) -> None:
    if kind != "watch":
        return
    items = recorded.items.values()
    for quantity in ("unsent", "unacked"):
        series.add(quantity, "totals", seconds, sum(item.get(quantity) or 0 for item in items))


def _layout(series: _Series, kind: str, drawn: list[str]) -> list[Panel]:
    kib = 1 / 1024
    if kind == "watch":
        return [
            series.panel("unsent", "unsent (per connection)", "KiB", drawn, kib),
            series.panel("unacked", "unacked (per connection)", "KiB", drawn, kib),
            series.panel("queue_delay_s", "queue delay: unsent / the rate it drains", "ms", drawn, 1e3),
            series.panel("tcp.rtt_us", "smoothed RTT", "ms", drawn, 1e-3),
            series.panel("totals", "the process: totals over its connections", "KiB",
                         ["unsent", "unacked"], kib),
        ]
    if kind == "top":
        return [
            series.panel("sent_bytes_per_s", "sent per process (retransmissions included)", "KiB/s", drawn, kib),
            series.panel("received_bytes_per_s", "received per process", "KiB/s", drawn, kib),
            series.panel("total_sent_bytes", "sent since the start, per process", "MiB", drawn, kib * kib),
            series.panel("total_received_bytes", "received since the start, per process", "MiB", drawn,
                         kib * kib),
        ]
    return [
        series.panel("rx_bytes", "received per interface", "kB/s", drawn, 1e-3),
        series.panel("tx_bytes", "sent per interface", "kB/s", drawn, 1e-3),
    ]


def plot(path: str, out: str, *, connection: Optional[str] = None, since: Optional[float] = None,
         until: Optional[float] = None) -> PlotSummary:
    """Write the PNG of a recording (see panels) to out; needs matplotlib."""
    Figure = figure_class()
    drawn, summary = panels(path, connection=connection, since=since, until=until)
    fig = Figure(figsize=(10, 2.3 * len(drawn) + 0.6), layout="constrained")
    axes = fig.subplots(len(drawn), 1, sharex=True, squeeze=False)[:, 0]
    legend_shown = set()
    for ax, panel in zip(axes, drawn):
        for label, (xs, ys) in panel.lines.items():
            ax.plot(xs, ys, label=label, drawstyle="steps-post", linewidth=1)
        ax.set_title(panel.title, fontsize=10, loc="left")
        ax.set_ylabel(panel.ylabel)
        ax.grid(alpha=0.3)
        if panel.lines and not set(panel.lines) <= legend_shown:  # the same lines keep their colours
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
            legend_shown |= set(panel.lines)
    axes[-1].set_xlabel("seconds since the recording's first sample")
    shown = (f"{summary.items_drawn} of {summary.items} {'connections' if summary.kind == 'watch' else 'rows'}"
             f" (the busiest)" if summary.items > summary.items_drawn else "")
    fig.suptitle(f"sockdiag {summary.kind} recording {os.path.basename(path)}: {summary.samples} samples  {shown}",
                 fontsize=10)
    try:
        fig.savefig(out, format="png", dpi=100)
    except OSError as err:
        raise SockdiagError(f"cannot write {out}: {err.strerror}") from None
    return summary

