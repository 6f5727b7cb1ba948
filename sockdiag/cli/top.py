"""`sockdiag top`: processes ranked by TCP throughput, live (like nethogs, without pcap)."""

from __future__ import annotations

import json
import signal
import shutil
import sys
import time

import click

from .. import accounting
from .. import _watch
from .._watch import format_bytes
from . import options

COLUMNS = ("PID", "NAME", "CONNS", "CLOSED", "SENT/s", "RECV/s", "ACKED/s", "RETRANS/s",
           "SENT", "RECV")
# Dropped in this order while the table is wider than the screen.
DROPPABLE = ("ACKED/s", "CLOSED", "RETRANS/s", "RECV", "SENT")


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


def render(sample, rows, max_lines=None, max_width=None) -> str:
    """The sample for people: a title, coverage notes, then the table (rates
    per second and totals since the start, in bytes), cut to max_lines and
    narrowed to max_width."""
    sent = sum(r.sent_bytes or 0 for r in rows) / sample.interval_s
    received = sum(r.received_bytes or 0 for r in rows) / sample.interval_s
    lines = [f"sockdiag top  {time.strftime('%H:%M:%S', time.localtime(sample.time))}  "
             f"{len(rows)} processes  sent {_bytes(sent)}/s  received {_bytes(received)}/s"]
    lines += [f"note: {note}" for note in accounting.coverage_notes(sample)]
    shown = rows
    if max_lines is not None:
        room = max(max_lines - len(lines) - 3, 1)  # blank line, column header, rule
        if len(rows) > room:
            shown = rows[:max(room - 1, 1)]  # one line says how many are hidden
    lines.append("")
    lines.append(_watch.table([_table_row(r) for r in shown], max_width, COLUMNS, DROPPABLE, ("NAME",))
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


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


@click.command()
@options.interval
@options.count
@options.once
@options.json_output
@click.option("--sort", "sort_key", type=click.Choice(accounting.SORT_KEYS), default="total",
              show_default=True, help="Rank processes by this (total = sent + received).")
@click.option("--trace-connects/--no-trace-connects", default=None,
              help="Name the process of client connections shorter than a sample with the "
                   "kernel's connect tracepoint (default: when root).")
def top(interval, count, once, as_json, sort_key, trace_connects):
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
    # SIGTERM ends the view as Ctrl-C does, so that the connect tracer is removed.
    signal.signal(signal.SIGTERM, _interrupt)
    with accounting.TrafficAccountant(trace_connects=trace_connects) as accountant:
        started = time.monotonic()
        done = 0
        try:
            while count is None or done < count:
                # Sleep the interval minus the time the last update took (an
                # update that overran is not caught up with a short interval).
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
                started = time.monotonic()
                sample = accountant.sample()
                rows = accounting.sort_traffic(sample.processes, sort_key)
                done += 1
                if as_json:
                    click.echo(sample_json(sample, rows))
                elif live:
                    size = shutil.get_terminal_size()
                    _watch.redraw(sys.stdout, render(sample, rows, size.lines - 1, size.columns),
                                  size.columns)
                    sys.stdout.flush()
                else:
                    click.echo(render(sample, rows) + ("\n" if count != 1 else ""))
        except KeyboardInterrupt:
            pass  # Ctrl-C ends the view; the last screen stays
        finally:
            if live:
                click.echo()
