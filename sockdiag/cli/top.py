"""`sockdiag top`: processes ranked by TCP throughput, live (like nethogs, without pcap)."""

from __future__ import annotations

import json
import shutil
import sys
import time

import click
from tabulate import tabulate

from .. import accounting
from .. import _watch
from .._watch import format_bytes
from . import options

HEADERS = ("PID", "NAME", "CONNS", "CLOSED", "SENT/s", "RECV/s", "ACKED/s", "RETRANS/s",
           "SENT", "RECV")
# Lines the live view keeps for itself: title, notes, table header.
_RESERVED_LINES = 6


def _bytes(value) -> str:
    """A byte count or rate for people ("3.6M"); "-" when the kernel has no such counter."""
    return format_bytes(None if value is None else round(value))


def _table_row(row) -> tuple:
    return (
        "-" if row.pid is None else row.pid, row.name or "?", row.connections, row.closed,
        _bytes(row.sent_bytes_per_s), _bytes(row.received_bytes_per_s),
        _bytes(row.acked_bytes_per_s), _bytes(row.retrans_bytes_per_s),
        _bytes(row.total_sent_bytes), _bytes(row.total_received_bytes),
    )


def render(sample, rows, max_rows=None) -> str:
    """The sample as text for people: a title, coverage notes, then the table."""
    shown = rows if max_rows is None else rows[:max_rows]
    sent = sum(r.sent_bytes or 0 for r in rows) / sample.interval_s
    received = sum(r.received_bytes or 0 for r in rows) / sample.interval_s
    lines = [f"sockdiag top - {time.strftime('%H:%M:%S', time.localtime(sample.time))}  "
             f"{len(rows)} processes  sent {_bytes(sent)}/s  "
             f"received {_bytes(received)}/s  (bytes, over {sample.interval_s:.2f} s)"]
    lines += [f"note: {note}" for note in accounting.coverage_notes(sample)]
    lines.append(tabulate([_table_row(r) for r in shown], headers=HEADERS,
                          disable_numparse=True, colalign=("right", "left") + ("right",) * 8))
    if len(shown) < len(rows):
        lines.append(f"... {len(rows) - len(shown)} more (--json for all)")
    return "\n".join(lines)


def sample_json(sample, rows) -> str:
    """The sample as one JSON line for programs."""
    record = sample.asdict()
    record["processes"] = [r.asdict() for r in rows]
    record["notes"] = accounting.coverage_notes(sample)
    return json.dumps(record)


@click.command()
@options.interval
@options.count
@options.once
@options.json_output
@click.option("--sort", "sort_key", type=click.Choice(accounting.SORT_KEYS), default="total",
              show_default=True, help="Rank processes by this (total = sent + received).")
def top(interval, count, once, as_json, sort_key):
    """Processes ranked by TCP throughput, live (Linux).

    Bytes sent, received, acked and retransmitted per process, from the
    kernel's tcp_info counters of every TCP socket, plus the final counters
    of sockets that closed between two samples (socket-destroy
    notifications).  Rates are over --interval seconds; the first
    table comes one interval after the start.
    """
    if once:
        count = 1
    live = not as_json and sys.stdout.isatty() and count != 1
    with accounting.TrafficAccountant() as accountant:
        started = time.monotonic()
        done = 0
        try:
            while count is None or done < count:
                # Sleep the interval minus the time the last update took.
                time.sleep(max(0.0, started + (done + 1) * interval - time.monotonic()))
                sample = accountant.sample()
                rows = accounting.sort_traffic(sample.processes, sort_key)
                done += 1
                if as_json:
                    click.echo(sample_json(sample, rows))
                elif live:
                    size = shutil.get_terminal_size()
                    _watch.redraw(sys.stdout, render(sample, rows, max(1, size.lines - _RESERVED_LINES)),
                                  size.columns)
                    sys.stdout.flush()
                else:
                    click.echo(render(sample, rows) + ("\n" if count != 1 else ""))
        except KeyboardInterrupt:
            pass
