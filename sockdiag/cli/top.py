"""`sockdiag top`: processes ranked by TCP throughput, live (like nethogs, without pcap)."""

from __future__ import annotations

import click

from . import options


@click.command()
@options.interval
@options.count
@options.once
@options.json_output
@options.top_sort
@options.trace_connects
@options.top_by
@options.recording
def top(interval, count, once, as_json, sort_key, trace_connects, group_by, record_to, max_size, force):
    """Processes ranked by TCP throughput, live (Linux).

    Bytes sent, received, acked and retransmitted per process, from the
    kernel's tcp_info counters of every TCP socket, plus the final counters
    of sockets that closed between two samples (socket-destroy
    notifications).  Rates are over --interval seconds; the first
    table comes one interval after the start.  --by cgroup sums the
    processes of each cgroup v2 (a systemd unit, a container, a pod).

    In a terminal: q quits, p pauses, < and > move the sort, / filters by
    pid or name, Enter opens the chosen process (Esc goes back), ? lists the
    keys.  --record FILE keeps every sample (sockdiag plot draws it).

    --json: one line per sample, each an object {"time", "interval_s",
    "processes", "notes", ...}, the rest saying what the sample could not see.
    """
    from ..views import top as view

    view.run(interval, 1 if once else count, sort_key, as_json=as_json,
             trace_connects=trace_connects, group_by=group_by, record_to=record_to, max_size=max_size,
             overwrite=force)
