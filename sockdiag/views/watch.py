"""The watch view (``sockdiag watch PID``, ``sockdiag demo``): a process's sockets, live.

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
from .._common import SOCKET_KINDS, TCP_INFO_FIELDS, SocketInfo
from .._exceptions import NoSuchProcess
from .._fast import json_objects
from .._watch import ProcessSample, SocketRates
from ..drain import DrainTracker, is_stalled
from ..fields import (ABSENT, SHORT_STATES, SOCKET_FIELDS, SOCKET_JSON_FIELDS, SOCKET_SORTS, columns, detail_values,
                      format_bytes, format_bytes_per_s, format_seconds, history_fields, row)
from .live import Notices, Screen, highlighted, run_view

HeaderLine = Callable[[ProcessSample, Optional[ProcessSample]], Optional[str]]

COLUMNS = ("FD", "KIND", "LOCAL", "REMOTE", "STATE", "UNACKED", "UNSENT", "FREE", "SNDBUF",
           "RECV-Q", "DROPS/s", "ACKED/s", "Q-DELAY", "LIMIT", "RTT")
_COLUMN_FIELDS = columns(SOCKET_FIELDS, COLUMNS)
# Dropped in this order, one by one, while the table is wider than the screen.
DROPPABLE = ("SNDBUF", "RTT", "ACKED/s", "FREE", "DROPS/s", "KIND")
_LEFT_ALIGNED = ("LOCAL", "REMOTE", "STATE")


def table_row(s: SocketInfo, rate: Optional[SocketRates]) -> tuple:
    """One row of the table (COLUMNS) for a socket; rate None on the first sample."""
    return row(_COLUMN_FIELDS, s, rate)


# The detail view's histories.
_HISTORY = history_fields(SOCKET_FIELDS)


# How the header names each limit: "stalled on their receivers".
_LIMIT_PHRASES = {"receiver": ("its receiver", "their receivers"), "network": ("the network", "the network"),
                  "sender_buffer": ("its send buffer", "their send buffers"),
                  "application": ("its writer", "their writers")}


def wait_summary(sockets: Sequence[SocketInfo]) -> Optional[str]:
    """The header's line on why bytes wait: stalled connections by limit, then
    the limits of the others that have bytes unsent; None when nothing waits."""
    stalled = Counter(s.limited_by for s in sockets if is_stalled(s))
    waiting = Counter(s.limited_by for s in sockets
                      if (s.unsent or 0) > 0 and not is_stalled(s) and s.limited_by is not None)
    parts = []
    for limit, n in stalled.most_common():
        parts.append(f"{n} connection{'s' if n > 1 else ''} STALLED"
                     + (f" on {_LIMIT_PHRASES[limit][n > 1]}" if limit is not None else ""))
    if waiting:
        parts.append("bytes wait on " + ", ".join(f"{_LIMIT_PHRASES[limit][n > 1]} ({n})"
                                                  for limit, n in waiting.most_common()))
    return " · ".join(parts) or None


def render(sample: ProcessSample, previous: Optional[ProcessSample], *, sort: str = "unsent",
           max_lines: Optional[int] = None, max_width: Optional[int] = None,
           extra_lines: Sequence[str] = (), controls=None, replaying: bool = False) -> str:
    """The screen for one sample: header, extra lines, then the table.

    The table is cut to max_lines (rows sorted by sort first) and narrowed to
    max_width by dropping the DROPPABLE columns in order.  ``controls``
    (sockdiag.views.keys.Controls, in a terminal): their sort and filter
    apply, the chosen row is highlighted, and their row_keys are set.

    Rates (the header's, the ACKED/s column) need the previous sample: "-"
    on the first.  Byte rates are shown in bytes/s, like the byte columns.
    ``replaying``: the sample is a recording's, and its time says "recorded"
    (a replay's text, piped or saved, is not taken for a live run's).
    """
    from .table import table

    counts = Counter(s.state for s in sample.sockets)
    unacked, unsent = sample.totals()
    per_socket = _watch.socket_rates(sample, previous)
    rate = _watch.total_rates(sample, previous, per_socket)
    stamp = ("recorded " if replaying else "") + time.strftime("%H:%M:%S", time.localtime(sample.time))
    who = (f"cgroup {sample.name} ({len(sample.pids)} processes)" if sample.cgroup is not None
           else f"pid {sample.pid} ({sample.name or '?'})")
    kinds = Counter(s.kind for s in sample.sockets)
    by_kind = ", ".join(f"{n} {kind.upper()}" for kind, n in sorted(kinds.items()))
    shown = (f"{len(sample.sockets)} sockets" if sample.held in (None, len(sample.sockets))
             else f"{len(sample.sockets)} of its {sample.held} sockets on the chosen ports")
    if by_kind:
        shown += f" ({by_kind})"
    lines = [
        f"{who}  {stamp}  {shown}: "
        + (", ".join(f"{n} {state}" for state, n in counts.most_common()) or "none"),
        f"unacked {format_bytes(unacked)}  unsent {format_bytes(unsent)}  "
        + (f"sent {format_bytes_per_s(rate.send_bytes_per_s)}  acked {format_bytes_per_s(rate.ack_bytes_per_s)}"
           if rate else f"sent {ABSENT}  acked {ABSENT}  (rates from the next sample)"),
    ]
    lines.extend(extra_lines)
    if (waits := wait_summary(sample.sockets)) is not None:
        lines.append(waits)
    sockets = sample.sockets
    if controls is not None:
        sort = controls.sort
        sockets = [s for s in sockets if controls.matches(s.local or "", s.remote or "", s.state, s.kind,
                                                          SHORT_STATES.get(s.state, s.state))]
    rows = _watch.sort_sockets(sockets, sort)
    hidden = 0
    if max_lines is not None:
        room = max(max_lines - len(lines) - 3, 1)  # blank line, column header, rule
        if len(rows) > room:
            room = max(room - 1, 1)  # one line says how many are hidden
            hidden = len(rows) - room
            rows = rows[:room]
    lines.append("")
    if rows:
        text = table([table_row(s, per_socket.get(s.inode)) for s in rows], COLUMNS,
                     left_aligned=_LEFT_ALIGNED, max_width=max_width, droppable=DROPPABLE)
        if controls is not None:
            text = highlighted(text, controls, [_watch.socket_key(s) for s in rows])
        lines.append(text)
    else:
        lines.append("(no sockets)" if controls is None or not controls.filter
                     else f"(no sockets match {controls.filter!r})")
    if hidden:
        lines.append(f"... {hidden} more sockets (sorted by {sort}; --port/--state/--kind narrow the view)")
    return "\n".join(lines)


def detail(sample: ProcessSample, key: str, series: list, max_lines: int, max_width: int,
           scroll: int = 0) -> str:
    """One connection in depth: its histories (series) as sparklines, then every tcp_info field."""
    from .keys import detail_screen

    found = next((s for s in sample.sockets if _watch.socket_key(s) == key), None)
    if found is None:
        return detail_screen(f"connection {key}: closed (Esc: back)", series, [], max_lines, max_width,
                             scroll)
    peer = found.remote or (f"peer inode {found.peer_inode}" if found.peer_inode else "(no peer)")
    title = (f"fd {found.fd}  {found.kind}  {found.local or '(unnamed)'} -> {peer}  {found.state}  "
             f"{found.congestion or ''}  inode {found.inode}")
    if is_stalled(found):
        title += f"  STALLED {format_seconds(found.stalled_s)}"
    if found.limited_by is not None and not is_stalled(found):
        title += f"  limited by {_LIMIT_PHRASES[found.limited_by][0]}"
    values = detail_values([field for field in SOCKET_FIELDS if not field.name.startswith(("tcp.", "rates."))],
                           found)
    if found.tcp is not None:
        values += [(name, ABSENT if value is None else str(value))
                   for name, value in zip(TCP_INFO_FIELDS, (getattr(found.tcp, n) for n in TCP_INFO_FIELDS))
                   if value is not None]
    return detail_screen(title, series, values, max_lines, max_width, scroll)


def _bits(bytes_per_s: Optional[float]) -> Optional[float]:
    return None if bytes_per_s is None else bytes_per_s * 8


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
        "send_bps": _bits(rate.send_bytes_per_s) if rate else None,
        "ack_bps": _bits(rate.ack_bytes_per_s) if rate else None,
    }
    if sample.cgroup is not None:
        head_fields.update(cgroup=sample.cgroup, pids=sample.pids)
    head = json.dumps(head_fields, separators=(",", ":"), ensure_ascii=False)
    # The sockets' objects are written by _fast: json.dumps of one dict per
    # socket would take longer than the dump itself.
    return head[:-1] + ',"sockets":' + json_objects(sample.sockets, SOCKET_JSON_FIELDS) + "}"


def run(pid: Optional[int], *, interval: float = 1.0, count: Optional[int] = None, as_json: bool = False,
        sort: str = "unsent", kinds: Sequence[str] = ("tcp",), states: Optional[Sequence[str]] = None,
        ports: Sequence[int] = (),
        header_lines: Sequence[HeaderLine] = (), out: Optional[TextIO] = None,
        notices: Optional[Notices] = None, cgroup=None, record_to: Optional[str] = None,
        max_size: Optional[int] = None, overwrite: bool = False) -> Optional[ProcessSample]:
    """Sample pid (or, with pid None, the cgroup: a sockdiag.cgroups.Cgroup)
    every interval seconds and show each sample on out (stdout) until count
    samples (None: until Ctrl-C, SIGTERM or q).

    Live (a terminal, not JSON, more than one sample): redrawn in place, cut
    to the terminal, driven by keys.  Raises NoSuchProcess/AccessDenied if
    the first look fails; a process that exits (a cgroup removed) later ends
    the loop with a one-line notice.  ``notices``: where the notices go (a
    Notices of its own by default; header lines that say any share it).  ``record_to``: a
    file every sample is also written to (sockdiag.recording_file), bounded
    by max_size bytes; overwrite: it may replace a recording.  Returns the
    last sample.
    """
    name = _platform.process_name_or_none(pid) if pid is not None else None
    first = [True]
    notices = notices if notices is not None else Notices()

    def next_sample() -> Optional[ProcessSample]:
        if pid is None:
            from ..cgroups import cgroup_removed

            if cgroup_removed(cgroup):  # as a process that exits: a notice, and the view ends
                notices(f"sockdiag: cgroup {cgroup.relative} was removed")
                return None
        try:
            return (_watch.take_sample(pid, name, states, ports, kinds) if pid is not None
                    else _watch.take_cgroup_sample(cgroup, states, ports, notices, kinds))
        except NoSuchProcess:
            if first[0]:
                raise
            notices(f"sockdiag: process {pid} ({name or '?'}) exited")
            return None
        finally:
            first[0] = False

    recorder = None
    if record_to is not None:
        from ..recording_file import RecordingWriter

        who = {"pid": pid, "name": name} if pid is not None else {"cgroup": cgroup.relative,
                                                                   "name": cgroup.name}
        recorder = RecordingWriter(record_to, "watch", {"interval_s": interval, "started": time.time(), **who},
                                   max_size=max_size, notice=notices, overwrite=overwrite)
    try:
        return show(next_sample, interval=interval, count=count, as_json=as_json, sort=sort,
                    header_lines=header_lines, out=out, recorder=recorder, notices=notices)
    finally:
        if recorder is not None:
            recorder.close()


def replay(path: str, *, count: Optional[int] = None, as_json: bool = False, sort: str = "unsent",
           states: Optional[Sequence[str]] = None, ports: Sequence[int] = (),
           kinds: Sequence[str] = SOCKET_KINDS, interval: Optional[float] = None,
           out: Optional[TextIO] = None) -> Optional[ProcessSample]:
    """Show a watch recording (sockdiag.recording_file) as watch showed it, at
    its recorded interval (or every interval seconds), with the same keys and
    only the sockets of kinds, in states and with a port in ports; the end of the
    recording ends the view, or, in a terminal, holds its last screen until q.
    The whole file is read once first: a recording refused at its last line
    shows nothing."""
    from ..recording_file import RecordingError, RecordingReader, process_sample

    with RecordingReader(path) as reader:
        if reader.kind != "watch":
            raise RecordingError(f"{path}: a recording of `sockdiag {reader.kind}`, which watch cannot "
                                 "replay; draw it with `sockdiag plot`")
        for _ in reader.samples():
            pass
    reader = RecordingReader(path)
    samples = reader.samples()

    def next_sample() -> Optional[ProcessSample]:
        recorded = next(samples, None)
        if recorded is None:
            return None
        sample = process_sample(reader.header, recorded, recorded.time)
        if states or ports or set(kinds) != set(SOCKET_KINDS):
            sockets = [s for s in sample.sockets
                       if (not states or s.state in states) and (s.kind or "tcp") in kinds]
            sample = sample.replace(sockets=_watch._with_ports(sockets, ports))
        return sample

    try:
        return show(next_sample, interval=interval or reader.header["interval_s"], count=count,
                    as_json=as_json, sort=sort, out=out, replaying=True)
    finally:
        reader.close()


def show(next_sample: Callable[[], Optional[ProcessSample]], *, interval: float, count: Optional[int],
         as_json: bool, sort: str, header_lines: Sequence[HeaderLine] = (),
         out: Optional[TextIO] = None, recorder=None, replaying: bool = False,
         notices: Optional[Notices] = None) -> Optional[ProcessSample]:
    """The watch view over samples from next_sample (None: no more), every interval seconds;
    notices kept while the screen is live (see Screen)."""
    previous: Optional[ProcessSample] = None
    # A replay shows what was estimated live; it is in the recording.
    drains = None if replaying else DrainTracker()

    def take():
        nonlocal previous
        sample = next_sample()
        if sample is None:
            return None
        if drains is not None:
            sample = sample.replace(sockets=drains.update(sample.sockets, sample.monotonic_s))
        if recorder is not None:
            from ..recording_file import watch_items

            recorder.write(sample.time, watch_items(sample),
                           {"pids": sample.pids} if sample.cgroup is not None else None)
        # Called in every mode: a source may act (a byte budget) as well as print.
        extra = [line for source in header_lines if (line := source(sample, previous)) is not None]
        shown = (sample, previous, extra)
        previous = sample
        return shown

    with Screen(out or sys.stdout, as_json=as_json, one_screen=count == 1, blank_after_last=True,
                sort_keys=SOCKET_SORTS, sort=sort, replaying=replaying, notices=notices) as screen:
        run_view(screen, interval, count, take,
                 json_line=lambda shown: sample_json(shown[0], shown[1]),
                 table=lambda shown, max_lines, max_width, controls: render(
                     shown[0], shown[1], sort=sort, max_lines=max_lines, max_width=max_width,
                     extra_lines=shown[2], controls=controls, replaying=replaying),
                 detail=lambda shown, *args: detail(shown[0], *args),
                 history_fields=_HISTORY,
                 history_rows=lambda shown: ((_watch.socket_key(s), s, None) for s in shown[0].sockets),
                 hold_last=replaying)
    return previous
