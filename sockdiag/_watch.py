"""The live view of a process's TCP sockets: typed samples, rates, rendering.

``sockdiag watch`` and ``sockdiag demo`` share all of this; the click commands
only parse options and call ``run``.  Rates are computed from two samples, so
the first sample shows none (never a fake zero).  Other views add lines under
the header through ``header_lines``: callables given (sample, previous) that
return a line or None.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence, TextIO

from . import process_sockets
from ._fast import json_objects
from ._common import LINUX, NoSuchProcess, Record, SocketInfo

HeaderLine = Callable[["ProcessSample", Optional["ProcessSample"]], Optional[str]]


@dataclass(frozen=True, slots=True)
class ProcessSample(Record):
    """One look at the TCP sockets of a process.

    ``time``: seconds since the epoch; ``monotonic_s``: time.monotonic() of the
    look, for rates.  ``sockets`` are the ones kept by the view's filters.
    """

    time: float
    monotonic_s: float
    pid: int
    name: Optional[str]
    sockets: tuple[SocketInfo, ...]

    def totals(self) -> tuple[int, int]:
        """(unacked, unsent) summed over the sockets, in bytes."""
        return (sum(s.unacked or 0 for s in self.sockets),
                sum(s.unsent or 0 for s in self.sockets))


@dataclass(frozen=True, slots=True)
class ByteRates(Record):
    """Byte rates between two samples, in bits/s.

    ``send_bps``: from tcpi_bytes_sent (retransmissions included);
    ``ack_bps``: from tcpi_bytes_acked.
    """

    send_bps: float
    ack_bps: float


def socket_rates(sample: ProcessSample, previous: Optional[ProcessSample]) -> dict[int, ByteRates]:
    """Rates of each socket present in both samples, by inode; empty for the first sample."""
    if previous is None or sample.monotonic_s <= previous.monotonic_s:
        return {}
    seconds = sample.monotonic_s - previous.monotonic_s
    before = {s.inode: s.tcp for s in previous.sockets if s.tcp is not None}
    found = {}
    for s in sample.sockets:
        old = before.get(s.inode)
        if old is not None and s.tcp is not None:
            found[s.inode] = ByteRates(
                send_bps=8 * ((s.tcp.bytes_sent or 0) - (old.bytes_sent or 0)) / seconds,
                ack_bps=8 * ((s.tcp.bytes_acked or 0) - (old.bytes_acked or 0)) / seconds)
    return found


def rates(sample: ProcessSample, previous: Optional[ProcessSample]) -> Optional[ByteRates]:
    """The process's rates (sums over the sockets in both samples); None for the first sample."""
    return _total(sample, previous, socket_rates(sample, previous))


def _total(sample: ProcessSample, previous: Optional[ProcessSample],
           per_socket: dict[int, ByteRates]) -> Optional[ByteRates]:
    if previous is None or sample.monotonic_s <= previous.monotonic_s:
        return None
    return ByteRates(send_bps=sum(r.send_bps for r in per_socket.values()),
                     ack_bps=sum(r.ack_bps for r in per_socket.values()))


def process_name(pid: int) -> Optional[str]:
    """The command name of pid, None if it cannot be read."""
    try:
        if LINUX:
            with open(f"/proc/{pid}/comm") as f:
                return f.read().strip()
        import subprocess
        out = subprocess.run(["ps", "-o", "comm=", "-p", str(pid)], capture_output=True, text=True)
        return out.stdout.strip().rsplit("/", 1)[-1] or None
    except OSError:
        return None


def take_sample(pid: int, name: Optional[str], states: Optional[Sequence[str]] = None,
                ports: Iterable[int] = ()) -> ProcessSample:
    """Sample pid's sockets, in states (None: all) and with a local or remote port in ports."""
    found = process_sockets(pid, states)
    wanted = set(ports)
    if wanted:
        found = [s for s in found if s.local_port in wanted or s.remote_port in wanted]
    return ProcessSample(time=time.time(), monotonic_s=time.monotonic(), pid=pid, name=name,
                         sockets=tuple(found))


# --- sorting -------------------------------------------------------------------

SORT_KEYS: dict[str, Callable[[SocketInfo], object]] = {
    "unsent": lambda s: s.unsent,
    "unacked": lambda s: s.unacked,
    "send-q": lambda s: s.send_queue,
    "recv-q": lambda s: s.recv_queue,
    "free": lambda s: s.free,
    "sndbuf": lambda s: s.sndbuf,
    "delay": lambda s: s.queue_delay_s,
    "rtt": lambda s: s.tcp.rtt_us if s.tcp else None,
    "fd": lambda s: s.fd,
    "local": lambda s: (s.local_address, s.local_port),
    "remote": lambda s: (s.remote_address, s.remote_port),
    "state": lambda s: s.state,
}
_ASCENDING = {"fd", "local", "remote", "state"}


def sort_sockets(sockets: Iterable[SocketInfo], key: str) -> list[SocketInfo]:
    """Sockets by key: quantities largest first, names and fds in order; None last.

    Ties stay in fd order.
    """
    get = SORT_KEYS[key]
    sockets = sorted(sockets, key=lambda s: -1 if s.fd is None else s.fd)
    present = [s for s in sockets if get(s) is not None]
    missing = [s for s in sockets if get(s) is None]
    present.sort(key=get, reverse=key not in _ASCENDING)  # type: ignore[arg-type]
    return present + missing


# --- rendering -----------------------------------------------------------------

def format_bytes(n: Optional[int]) -> str:
    """Bytes for people: 812, 45.2K, 3.6M, 128K (powers of 1024); "-" for unknown."""
    if n is None:
        return "-"
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0") + unit
    return str(n)


def format_bps(bps: Optional[float]) -> str:
    """A rate in bits/s for people: 950 bit/s, 12.3 Mbit/s; "-" for unknown."""
    if bps is None:
        return "-"
    for unit, size in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= size:
            return f"{bps / size:.1f} {unit}"
    return f"{bps:.0f} bit/s"


def format_seconds(seconds: Optional[float]) -> str:
    """A duration for people: 0, 350us, 12.5ms, 2.1s; "-" for unknown."""
    if seconds is None:
        return "-"
    if seconds == 0:
        return "0"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f}ms"
    return f"{seconds:.1f}s"


COLUMNS = ("FD", "LOCAL", "REMOTE", "STATE", "UNACKED", "UNSENT", "FREE", "SNDBUF",
           "RECV-Q", "ACKED/s", "Q-DELAY", "RTT")
# Dropped in this order, one by one, while the table is wider than the screen.
DROPPABLE = ("SNDBUF", "RTT", "ACKED/s", "FREE")
# ss's short names in the table, so that narrow screens keep more columns.
SHORT_STATES = {"ESTABLISHED": "ESTAB", "FIN_WAIT1": "FIN-WAIT-1", "FIN_WAIT2": "FIN-WAIT-2",
                "SYN_SENT": "SYN-SENT", "SYN_RECV": "SYN-RECV", "CLOSE_WAIT": "CLOSE-WAIT",
                "LAST_ACK": "LAST-ACK", "TIME_WAIT": "TIME-WAIT"}


def table_row(s: SocketInfo, rate: Optional[ByteRates]) -> tuple:
    """One row of the table (COLUMNS) for a socket; rate None on the first sample."""
    tcp = s.tcp
    return (
        "-" if s.fd is None else s.fd, s.local, s.remote, SHORT_STATES.get(s.state, s.state),
        format_bytes(s.unacked), format_bytes(s.unsent), format_bytes(s.free),
        format_bytes(s.sndbuf), format_bytes(s.recv_queue),
        "-" if rate is None else format_bytes(round(rate.ack_bps / 8)),
        format_seconds(s.queue_delay_s),
        format_seconds(tcp.rtt_us / 1e6) if tcp and tcp.rtt_us is not None else "-",
    )


def render(sample: ProcessSample, previous: Optional[ProcessSample], *, sort: str = "unsent",
           max_lines: Optional[int] = None, max_width: Optional[int] = None,
           extra_lines: Sequence[str] = ()) -> str:
    """The screen for one sample: header, extra lines, then the table.

    The table is cut to max_lines (rows sorted by sort first) and narrowed to
    max_width by dropping the DROPPABLE columns in order.

    Rates (the header's, the ACKED/s column) need the previous sample: "-"
    on the first.  Byte rates are shown in bytes/s, like the byte columns.
    """
    counts = Counter(s.state for s in sample.sockets)
    unacked, unsent = sample.totals()
    per_socket = socket_rates(sample, previous)
    rate = _total(sample, previous, per_socket)
    stamp = time.strftime("%H:%M:%S", time.localtime(sample.time))
    lines = [
        f"pid {sample.pid} ({sample.name or '?'})  {stamp}  "
        f"{len(sample.sockets)} TCP sockets: "
        + (", ".join(f"{n} {state}" for state, n in counts.most_common()) or "none"),
        f"unacked {format_bytes(unacked)}  unsent {format_bytes(unsent)}  "
        + (f"sent {format_bytes(round(rate.send_bps / 8))}/s  acked {format_bytes(round(rate.ack_bps / 8))}/s"
           if rate else "sent -  acked -  (rates from the next sample)"),
    ]
    lines.extend(extra_lines)
    rows = sort_sockets(sample.sockets, sort)
    hidden = 0
    if max_lines is not None:
        room = max(max_lines - len(lines) - 3, 1)  # blank line, column header, rule
        if len(rows) > room:
            room = max(room - 1, 1)  # one line says how many are hidden
            hidden = len(rows) - room
            rows = rows[:room]
    lines.append("")
    lines.append(table([table_row(s, per_socket.get(s.inode)) for s in rows], max_width)
                 if rows else "(no TCP sockets)")
    if hidden:
        lines.append(f"... {hidden} more sockets (sorted by {sort}; --port/--state narrow the view)")
    return "\n".join(lines)


def table(rows: list[tuple], max_width: Optional[int], columns: Sequence[str] = COLUMNS,
           droppable_columns: Sequence[str] = DROPPABLE, left_aligned: Sequence[str] = ("LOCAL", "REMOTE", "STATE")
           ) -> str:
    """rows under columns, one space apart, narrowed to max_width by dropping
    droppable_columns in order."""
    from tabulate import DataRow, TableFormat, tabulate

    # The header and its rule are made as rows: tabulate pads headers by two
    # more spaces, which an 80-column screen cannot spare.
    plain = TableFormat(lineabove=None, linebelowheader=None, linebetweenrows=None, linebelow=None,
                        headerrow=DataRow("", " ", ""), datarow=DataRow("", " ", ""),
                        padding=0, with_header_hide=None)
    keep = list(range(len(columns)))
    droppable = [columns.index(name) for name in droppable_columns]
    while True:
        body = [[str(row[i]) for i in keep] for row in rows]
        header = [columns[i] for i in keep]
        rule = ["-" * max(len(cell) for cell in column) for column in zip(header, *body)]
        text = tabulate([header, rule] + body, tablefmt=plain, disable_numparse=True,
                        colalign=["left" if columns[i] in left_aligned else "right" for i in keep])
        if max_width is None or not droppable or len(text.split("\n", 1)[0]) <= max_width:
            return text
        keep.remove(droppable.pop(0))


# --- JSON ----------------------------------------------------------------------

# (JSON key, SocketInfo attribute, TcpInfo attribute or None): one object per socket.
SOCKET_JSON_FIELDS = (
    ("fd", "fd", None), ("family", "family", None), ("local", "local", None),
    ("remote", "remote", None), ("state", "state", None),
    ("unacked", "unacked", None), ("unsent", "unsent", None), ("free", "free", None),
    ("sndbuf", "sndbuf", None), ("send_queue", "send_queue", None),
    ("recv_queue", "recv_queue", None), ("queue_delay_s", "queue_delay_s", None),
    ("congestion", "congestion", None),
    ("rtt_us", "tcp", "rtt_us"), ("snd_cwnd_segs", "tcp", "snd_cwnd_segs"),
    ("delivery_rate_bps", "tcp", "delivery_rate_bps"), ("total_retrans", "tcp", "total_retrans"),
    ("bytes_sent", "tcp", "bytes_sent"), ("bytes_acked", "tcp", "bytes_acked"),
    ("bytes_received", "tcp", "bytes_received"),
)


def sample_json(sample: ProcessSample, previous: Optional[ProcessSample]) -> str:
    """One line of JSON for a sample (rates are null on the first).

    ``{"time", "pid", "name", "send_bps", "ack_bps", "sockets": [...]}``, each
    socket an object of SOCKET_JSON_FIELDS.
    """
    rate = rates(sample, previous)
    head = json.dumps({
        "time": sample.time, "pid": sample.pid, "name": sample.name,
        "send_bps": rate.send_bps if rate else None, "ack_bps": rate.ack_bps if rate else None,
    }, separators=(",", ":"), ensure_ascii=False)
    # The sockets' objects are written by _fast: json.dumps of one dict per
    # socket would take longer than the dump itself.
    return head[:-1] + ',"sockets":' + json_objects(sample.sockets, SOCKET_JSON_FIELDS) + "}"


# --- the loop ------------------------------------------------------------------

def redraw(out: TextIO, screen: str, columns: int) -> None:
    """Draw screen over the previous one in a terminal, without flicker.

    Lines cut to the width (a wrapped line would scroll the screen), cursor
    home, each line erased to its end, then the rest of the screen.
    """
    cut = [line[:columns] for line in screen.split("\n")]
    out.write("\x1b[H" + "\x1b[K\n".join(cut) + "\x1b[K\x1b[J")


def run(pid: int, *, interval: float = 1.0, count: Optional[int] = None, as_json: bool = False,
        sort: str = "unsent", states: Optional[Sequence[str]] = None, ports: Sequence[int] = (),
        header_lines: Sequence[HeaderLine] = (), out: Optional[TextIO] = None,
        notice: Callable[[str], None] = lambda line: print(line, file=sys.stderr)
        ) -> Optional[ProcessSample]:
    """Sample pid every interval seconds and print each sample to out (stdout)
    until count samples (None: until Ctrl-C).

    Live (a terminal, not JSON): redraws in place, cut to the terminal height.
    Raises NoSuchProcess/AccessDenied if the first look fails; a process that
    exits later ends the loop with a one-line notice.  Returns the last sample.
    """
    out = out or sys.stdout
    live = not as_json and out.isatty()
    name = process_name(pid)
    previous: Optional[ProcessSample] = None
    taken = 0
    try:
        while True:
            started = time.monotonic()
            try:
                sample = take_sample(pid, name, states, ports)
            except NoSuchProcess:
                if previous is None:
                    raise
                notice(f"sockdiag: process {pid} ({name or '?'}) exited")
                return previous
            # Called in every mode: a source may act (a byte budget) as well as print.
            extra = [line for source in header_lines
                     if (line := source(sample, previous)) is not None]
            if as_json:
                out.write(sample_json(sample, previous) + "\n")
            else:
                if live:
                    import shutil  # only a live view needs it

                    size = shutil.get_terminal_size()
                    screen = render(sample, previous, sort=sort, max_lines=size.lines - 1,
                                    max_width=size.columns, extra_lines=extra)
                    redraw(out, screen, size.columns)
                else:
                    screen = render(sample, previous, sort=sort, extra_lines=extra)
                    out.write(screen + "\n\n")
            out.flush()
            previous = sample
            taken += 1
            if count is not None and taken >= count:
                break
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass  # Ctrl-C ends the view; the last screen stays
    finally:
        if live:
            out.write("\n")
            out.flush()
    return previous
