"""The top view (``sockdiag top``): processes ranked by TCP throughput, live."""

from __future__ import annotations

import json
import sys
import time
from typing import Optional, TextIO

from .. import accounting
from ..fields import TRAFFIC_FIELDS, columns, format_bytes, row
from .live import Screen, every

COLUMNS = ("PID", "NAME", "CONNS", "CLOSED", "SENT/s", "RECV/s", "ACKED/s", "RETRANS/s",
           "SENT", "RECV")
_COLUMN_FIELDS = columns(TRAFFIC_FIELDS, COLUMNS)
# Dropped in this order while the table is wider than the screen.
DROPPABLE = ("ACKED/s", "CLOSED", "RETRANS/s", "RECV", "SENT")


def render(sample, rows, max_lines=None, max_width=None, noun: str = "processes") -> str:
    """The sample for people: a title, coverage notes, then the table (rates
    per second and totals since the start, in bytes), cut to max_lines and
    narrowed to max_width."""
    from .table import table

    sent = sum(r.sent_bytes or 0 for r in rows) / sample.interval_s
    received = sum(r.received_bytes or 0 for r in rows) / sample.interval_s
    lines = [f"sockdiag top  {time.strftime('%H:%M:%S', time.localtime(sample.time))}  "
             f"{len(rows)} {noun}  sent {format_bytes(sent)}/s  received {format_bytes(received)}/s"]
    lines += [f"note: {note}" for note in accounting.coverage_notes(sample)]
    shown = rows
    if max_lines is not None:
        room = max(max_lines - len(lines) - 3, 1)  # blank line, column header, rule
        if len(rows) > room:
            shown = rows[:max(room - 1, 1)]  # one line says how many are hidden
    lines.append("")
    lines.append(table([row(_COLUMN_FIELDS, r) for r in shown], COLUMNS,
                       left_aligned=("NAME",), max_width=max_width, droppable=DROPPABLE)
                 if rows else "(no TCP traffic)")
    if len(shown) < len(rows):
        lines.append(f"... {len(rows) - len(shown)} more processes (--json for all)")
    return "\n".join(lines)


def sample_json(sample, rows) -> str:
    """The sample as one JSON line for programs."""
    record = sample.asdict()
    record["processes"] = [r.asdict() for r in rows]
    record["notes"] = accounting.coverage_notes(sample)
    return json.dumps(record)


def run(interval: float, count: Optional[int], sort_key: str = "total", *, as_json: bool = False,
        out: Optional[TextIO] = None, trace_connects: Optional[bool] = None,
        group_by: str = "process") -> None:
    """Show per-process traffic every interval seconds, count times (None:
    until Ctrl-C or SIGTERM); the first table one interval after the start
    (the baseline).  trace_connects: see TrafficAccountant.  group_by
    "cgroup": one row per cgroup v2 (pid None, name the cgroup's)."""
    cgroups: dict[int, str] = {}
    with accounting.TrafficAccountant(trace_connects=trace_connects) as accountant, \
            Screen(out or sys.stdout, as_json=as_json, one_screen=count == 1,
                   blank_after_last=count != 1) as screen:

        def update() -> None:
            sample = accountant.sample()
            rows = sample.processes
            if group_by == "cgroup":
                rows = accounting.by_cgroup(rows, cgroups)
            rows = accounting.sort_traffic(rows, sort_key)
            screen.show(lambda: sample_json(sample, rows),
                        lambda max_lines, max_width: render(sample, rows, max_lines, max_width,
                                                            "cgroups" if group_by == "cgroup" else "processes"))

        every(interval, count, update, first_after_interval=True)
