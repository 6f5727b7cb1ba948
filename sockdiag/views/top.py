"""The top view (``sockdiag top``): processes ranked by TCP throughput, live."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Optional, TextIO

from .. import accounting
from .._watch import known_sum
from ..fields import (TRAFFIC_FIELDS, TRAFFIC_SORTS, columns, detail_values, format_bytes_per_s,
                      history_fields, json_object, row)
from ..interrupts import signals_as_interrupt
from .live import Notices, Screen, highlighted, run_view

COLUMNS = ("PID", "NAME", "CONNS", "CLOSED", "SENT/s", "RECV/s", "ACKED/s", "RETRANS/s",
           "STALLED", "WAIT rcv/net/buf", "UDP DROPS/s", "UDP RQ", "SENT", "RECV")
_COLUMN_FIELDS = columns(TRAFFIC_FIELDS, COLUMNS)
# Dropped in this order while the table is wider than the screen.
DROPPABLE = ("ACKED/s", "CLOSED", "RETRANS/s", "WAIT rcv/net/buf", "UDP RQ", "RECV", "SENT")


# The detail view's histories.
_HISTORY = history_fields(TRAFFIC_FIELDS)


def process_key(traffic) -> str:
    """A row's identity across samples: its pid, else its name (a cgroup's), else "-"
    (the unattributed row)."""
    return str(traffic.pid) if traffic.pid is not None else traffic.name or "-"


def render(sample, rows, max_lines=None, max_width=None, noun: str = "processes", controls=None) -> str:
    """The sample for people: a title, coverage notes, then the table (rates
    per second and totals since the start, in bytes), cut to max_lines and
    narrowed to max_width.  ``controls`` (in a terminal): their filter (pid
    or name) applies, the chosen row is highlighted."""
    from .table import table

    # A counter the kernel lacks (bytes_sent before 4.19) is unknown in every row: so is its sum.
    sent, received = (known_sum([getattr(r, name) for r in rows]) for name in ("sent_bytes_per_s",
                                                                                "received_bytes_per_s"))
    lines = [f"sockdiag top  {time.strftime('%H:%M:%S', time.localtime(sample.time))}  "
             f"{len(rows)} {noun}  sent {format_bytes_per_s(sent)}  received {format_bytes_per_s(received)}"]
    lines += [f"note: {note}" for note in accounting.coverage_notes(sample)]
    labels = COLUMNS if noun == "processes" else COLUMNS[1:]  # a cgroup has no pid
    if controls is not None:
        rows = [r for r in rows if controls.matches(r.pid, r.name)]
    shown = rows
    if max_lines is not None:
        room = max(max_lines - len(lines) - 3, 1)  # blank line, column header, rule
        if len(rows) > room:
            shown = rows[:max(room - 1, 1)]  # one line says how many are hidden
    lines.append("")
    if rows:
        text = table([row(_COLUMN_FIELDS[len(COLUMNS) - len(labels):], r) for r in shown], labels,
                     left_aligned=("NAME",), max_width=max_width, droppable=DROPPABLE)
        if controls is not None:
            text = highlighted(text, controls, [process_key(r) for r in shown])
        lines.append(text)
    else:
        lines.append("(no TCP traffic)")
    if len(shown) < len(rows):
        lines.append(f"... {len(rows) - len(shown)} more processes (--json for all)")
    return "\n".join(lines)


def detail(rows, key: str, series: list, max_lines: int, max_width: int, scroll: int = 0) -> str:
    """One row (a process, or a cgroup) in depth: its histories (series), then every field."""
    from .keys import detail_screen

    found = next((r for r in rows if process_key(r) == key), None)
    if found is None:
        return detail_screen(f"{key}: no TCP traffic in this sample (Esc: back)", series, [],
                             max_lines, max_width, scroll)
    values = detail_values(TRAFFIC_FIELDS, found)
    title = f"pid {key} ({found.name or '?'})" if found.pid is not None else key
    return detail_screen(title, series, values, max_lines, max_width, scroll)


def sample_json(sample, rows) -> str:
    """The sample as one JSON line for programs."""
    document = sample.asdict()
    document["processes"] = [json_object(TRAFFIC_FIELDS, r) for r in rows]
    document["notes"] = accounting.coverage_notes(sample)
    return json.dumps(document)


def run(interval: float, count: Optional[int], sort_key: str = "total", *, as_json: bool = False,
        out: Optional[TextIO] = None, trace_connects: Optional[bool] = None,
        group_by: str = "process", record_to: Optional[str] = None, max_size: Optional[int] = None,
        overwrite: bool = False) -> None:
    """Show per-process traffic every interval seconds, count times (None:
    until Ctrl-C, SIGTERM or q); the first table one interval after the start
    (the baseline).  trace_connects: see TrafficAccountant.  group_by
    "cgroup": one row per cgroup v2 (pid None, name the cgroup's).
    ``record_to``: a file every sample is also written to, per process
    (sockdiag.recording_file), bounded by max_size bytes; overwrite: it may replace a recording."""
    cgroups: dict[int, str] = {}
    notices = Notices()  # a recording that stops says so under the last screen
    # A signal before the first sample (the baseline dump of every socket) unwinds too: the trace instance goes.
    with signals_as_interrupt(), contextlib.ExitStack() as stack:
        accountant = stack.enter_context(accounting.TrafficAccountant(trace_connects=trace_connects))
        recorder = None
        if record_to is not None:
            from ..recording_file import RecordingWriter, top_items, top_sample_fields

            recorder = stack.enter_context(RecordingWriter(
                record_to, "top", {"interval_s": interval, "started": time.time()}, max_size=max_size,
                notice=notices, overwrite=overwrite))
        screen = stack.enter_context(Screen(out or sys.stdout, as_json=as_json, one_screen=count == 1,
                                            blank_after_last=count != 1, sort_keys=TRAFFIC_SORTS,
                                            sort=sort_key, notices=notices))
        noun = "cgroups" if group_by == "cgroup" else "processes"

        def take():
            sample = accountant.sample()
            if recorder is not None:
                recorder.write(sample.time, top_items(sample), top_sample_fields(sample))
            rows = sample.processes
            if group_by == "cgroup":
                rows = accounting.by_cgroup(rows, cgroups)
            return sample, rows

        def table(shown, max_lines, max_width, controls):
            sample, rows = shown
            rows = accounting.sort_traffic(rows, sort_key if controls is None else controls.sort)
            return render(sample, rows, max_lines, max_width, noun, controls)

        run_view(screen, interval, count, take,
                 json_line=lambda shown: sample_json(shown[0], accounting.sort_traffic(shown[1], sort_key)),
                 table=table, detail=lambda shown, *args: detail(shown[1], *args),
                 history_fields=_HISTORY,
                 history_rows=lambda shown: ((process_key(r), r, None) for r in shown[1]),
                 first_after_interval=True)
