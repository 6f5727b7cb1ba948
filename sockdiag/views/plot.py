"""Pictures of recordings (``sockdiag plot FILE -o out.png``): timelines, one panel per quantity.

A watch recording gives, per connection, unsent, unacked, queue delay and
RTT, and the process's totals; a top recording each process's sent and
received rates and totals; an ifstat recording each interface's rates.
The recorder stays small; the analysis lives here (M-Lab's split).
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Optional

from .._common import FrozenStruct, InterfaceCounters, ProcessTraffic, figure_class
from .._exceptions import SockdiagError
from .._watch import interface_rates
from ..fields import INTERFACE_FIELDS, SOCKET_FIELDS, TRAFFIC_FIELDS, named
from ..recording_file import RecordingReader, socket_info

MOST = 8  # lines per panel when no --connection is given: the busiest items


# The quantities drawn, a panel each, in order: each field's plot is the
# panel's title, its plot_unit the y axis's.
PANEL_FIELDS = {
    "watch": named(SOCKET_FIELDS, "unsent", "unacked", "queue_delay_s", "tcp.rtt_us"),
    "top": named(TRAFFIC_FIELDS, "sent_bytes_per_s", "received_bytes_per_s", "total_sent_bytes",
                  "total_received_bytes"),
    "ifstat": named(INTERFACE_FIELDS, "rates.rx_bytes_per_s", "rates.tx_bytes_per_s"),
}
# watch's last panel: these quantities summed over the process's connections.
TOTAL_FIELDS = named(SOCKET_FIELDS, "unsent", "unacked")


class Panel(FrozenStruct):
    """One panel: its title, the unit of its values (the y axis's label) and
    its lines, (line label -> (seconds, values))."""

    title: str
    unit: str
    lines: dict[str, tuple[list[float], list[float]]]


class PlotSummary(FrozenStruct):
    """What was drawn: the recording's kind, samples in the window, items drawn of all."""

    kind: str
    samples: int
    items_drawn: int
    items: int


class _Series:
    """Per quantity and item, the (seconds, value in the plot's unit) points of the samples in the window."""

    def __init__(self) -> None:
        self.points: dict[str, dict[str, tuple[list, list]]] = defaultdict(lambda: defaultdict(lambda: ([], [])))
        self.labels: dict[str, str] = {}

    def add(self, quantity: str, item: str, seconds: float, value: float) -> None:
        xs, ys = self.points[quantity][item]
        xs.append(seconds)
        ys.append(value)

    def panel(self, quantity: str, title: str, unit: str, items: list[str]) -> Panel:
        chosen = self.points.get(quantity, {})
        return Panel(title, unit,
                     {self.labels.get(item, item): chosen[item] for item in items if item in chosen})


def _recorded(struct: type, item: dict):
    """A recorded item as its struct (a field the recording lacks is None)."""
    return struct(**{name: item.get(name) for name in struct._fields})


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
    rates = None
    if kind == "watch":
        recorded = socket_info(item)
        series.labels[key] = f"fd {recorded.fd} {recorded.local} > {recorded.remote}"
        peak = (recorded.unsent or 0) + (recorded.unacked or 0)
    elif kind == "top":
        recorded = _recorded(ProcessTraffic, item)
        series.labels[key] = f"{key} {recorded.name or ''}".strip()
        peak = (recorded.total_sent_bytes or 0) + (recorded.total_received_bytes or 0)
    else:
        if before is None:
            return  # a rate needs two samples
        elapsed, old = before
        recorded = _recorded(InterfaceCounters, item)
        rates = interface_rates({key: _recorded(InterfaceCounters, old)}, {key: recorded}, elapsed)[key]
        peak = max(rates.rx_bytes_per_s or 0, rates.tx_bytes_per_s or 0)
    for field in PANEL_FIELDS[kind]:
        series.add(field.name, key, seconds, field.plotted(field.value(recorded, rates)))
    peaks[key] = max(peaks[key], peak)


def _add_totals(series: _Series, kind: str, recorded, seconds: float) -> None:
    if kind != "watch":
        return
    items = recorded.items.values()
    for field in TOTAL_FIELDS:
        series.add("totals", field.label, seconds, field.plotted(sum(item.get(field.name) or 0 for item in items)))


def _layout(series: _Series, kind: str, drawn: list[str]) -> list[Panel]:
    panels = [series.panel(field.name, field.plot, field.plot_unit, drawn) for field in PANEL_FIELDS[kind]]
    if kind == "watch":
        panels.append(series.panel("totals", "the process: totals over its connections", TOTAL_FIELDS[0].plot_unit,
                                   [field.label for field in TOTAL_FIELDS]))
    return panels


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
        ax.set_ylabel(panel.unit)
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

