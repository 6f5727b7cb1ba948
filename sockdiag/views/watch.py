"""The watch view (``sockdiag watch PID``, ``sockdiag demo``): a process's TCP sockets, live.

Other views add lines under the header through header lines: callables
given (sample, previous) that return a line or None (sockdiag.views.header_lines).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import Callable, Optional, Sequence, TextIO

from .. import _platform, _watch
from .._common import NoSuchProcess, SocketInfo
from .._fast import json_objects
from .._watch import ByteRates, ProcessSample
from ..fields import ABSENT, SOCKET_FIELDS, SOCKET_JSON_FIELDS, columns, format_bytes, row
from .live import Screen, every

HeaderLine = Callable[[ProcessSample, Optional[ProcessSample]], Optional[str]]

COLUMNS = ("FD", "LOCAL", "REMOTE", "STATE", "UNACKED", "UNSENT", "FREE", "SNDBUF",
           "RECV-Q", "ACKED/s", "Q-DELAY", "RTT")
_COLUMN_FIELDS = columns(SOCKET_FIELDS, COLUMNS)
# Dropped in this order, one by one, while the table is wider than the screen.
DROPPABLE = ("SNDBUF", "RTT", "ACKED/s", "FREE")
_LEFT_ALIGNED = ("LOCAL", "REMOTE", "STATE")


def table_row(s: SocketInfo, rate: Optional[ByteRates]) -> tuple:
    """One row of the table (COLUMNS) for a socket; rate None on the first sample."""
    return row(_COLUMN_FIELDS, s, rate)


def render(sample: ProcessSample, previous: Optional[ProcessSample], *, sort: str = "unsent",
           max_lines: Optional[int] = None, max_width: Optional[int] = None,
           extra_lines: Sequence[str] = ()) -> str:
    """The screen for one sample: header, extra lines, then the table.

    The table is cut to max_lines (rows sorted by sort first) and narrowed to
    max_width by dropping the DROPPABLE columns in order.

    Rates (the header's, the ACKED/s column) need the previous sample: "-"
    on the first.  Byte rates are shown in bytes/s, like the byte columns.
    """
    from .table import table

    counts = Counter(s.state for s in sample.sockets)
    unacked, unsent = sample.totals()
    per_socket = _watch.socket_rates(sample, previous)
    rate = _watch.total_rates(sample, previous, per_socket)
    stamp = time.strftime("%H:%M:%S", time.localtime(sample.time))
    who = (f"cgroup {sample.name} ({len(sample.pids)} processes)" if sample.cgroup is not None
           else f"pid {sample.pid} ({sample.name or '?'})")
    lines = [
        f"{who}  {stamp}  "
        f"{len(sample.sockets)} TCP sockets: "
        + (", ".join(f"{n} {state}" for state, n in counts.most_common()) or "none"),
        f"unacked {format_bytes(unacked)}  unsent {format_bytes(unsent)}  "
        + (f"sent {format_bytes(rate.send_bytes_per_s)}/s  acked {format_bytes(rate.ack_bytes_per_s)}/s"
           if rate else f"sent {ABSENT}  acked {ABSENT}  (rates from the next sample)"),
    ]
    lines.extend(extra_lines)
    rows = _watch.sort_sockets(sample.sockets, sort)
    hidden = 0
    if max_lines is not None:
        room = max(max_lines - len(lines) - 3, 1)  # blank line, column header, rule
        if len(rows) > room:
            room = max(room - 1, 1)  # one line says how many are hidden
            hidden = len(rows) - room
            rows = rows[:room]
    lines.append("")
    lines.append(table([table_row(s, per_socket.get(s.inode)) for s in rows], COLUMNS,
                       left_aligned=_LEFT_ALIGNED, max_width=max_width, droppable=DROPPABLE)
                 if rows else "(no TCP sockets)")
    if hidden:
        lines.append(f"... {hidden} more sockets (sorted by {sort}; --port/--state narrow the view)")
    return "\n".join(lines)


def sample_json(sample: ProcessSample, previous: Optional[ProcessSample]) -> str:
    """One line of JSON for a sample (rates are null on the first).

    ``{"time", "pid", "name", "send_bps", "ack_bps", "sockets": [...]}``, each
    socket an object of SOCKET_JSON_FIELDS; ``send_bps``/``ack_bps`` are in
    bits/s, as the JSON has always said.  A cgroup's sample also has
    ``"cgroup"`` (its path) and ``"pids"``, and ``"pid"`` null.
    """
    rate = _watch.rates(sample, previous)
    head_fields = {
        "time": sample.time, "pid": sample.pid, "name": sample.name,
        "send_bps": rate.send_bytes_per_s * 8 if rate else None,
        "ack_bps": rate.ack_bytes_per_s * 8 if rate else None,
    }
    if sample.cgroup is not None:
        head_fields.update(cgroup=sample.cgroup, pids=sample.pids)
    head = json.dumps(head_fields, separators=(",", ":"), ensure_ascii=False)
    # The sockets' objects are written by _fast: json.dumps of one dict per
    # socket would take longer than the dump itself.
    return head[:-1] + ',"sockets":' + json_objects(sample.sockets, SOCKET_JSON_FIELDS) + "}"


def run(pid: Optional[int], *, interval: float = 1.0, count: Optional[int] = None, as_json: bool = False,
        sort: str = "unsent", states: Optional[Sequence[str]] = None, ports: Sequence[int] = (),
        header_lines: Sequence[HeaderLine] = (), out: Optional[TextIO] = None,
        notice: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
        cgroup=None) -> Optional[ProcessSample]:
    """Sample pid (or, with pid None, the cgroup: a sockdiag.cgroups.Cgroup)
    every interval seconds and show each sample on out (stdout) until count
    samples (None: until Ctrl-C or SIGTERM).

    Live (a terminal, not JSON, more than one sample): redrawn in place, cut
    to the terminal.  Raises NoSuchProcess/AccessDenied if the first look
    fails; a process that exits later ends the loop with a one-line notice.
    Returns the last sample.
    """
    name = _platform.process_name_or_none(pid) if pid is not None else None
    previous: Optional[ProcessSample] = None

    def update() -> bool:
        nonlocal previous
        try:
            sample = (_watch.take_sample(pid, name, states, ports) if pid is not None
                      else _watch.take_cgroup_sample(cgroup, states, ports, notice))
        except NoSuchProcess:
            if previous is None:
                raise
            notice(f"sockdiag: process {pid} ({name or '?'}) exited")
            return False
        # Called in every mode: a source may act (a byte budget) as well as print.
        extra = [line for source in header_lines if (line := source(sample, previous)) is not None]
        screen.show(lambda: sample_json(sample, previous),
                    lambda max_lines, max_width: render(sample, previous, sort=sort, max_lines=max_lines,
                                                        max_width=max_width, extra_lines=extra))
        previous = sample
        return True

    with Screen(out or sys.stdout, as_json=as_json, one_screen=count == 1, blank_after_last=True) as screen:
        every(interval, count, update)
    return previous
