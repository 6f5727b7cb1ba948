"""`sockdiag demo`: watch a built-in workload, live (the README's first command)."""

from __future__ import annotations

import math

import click

from .._common import SOCKET_KINDS
from . import options


@click.command()
@options.duration
@options.interval
@options.json_output
@options.recording
def demo(duration, interval, as_json, record_to, max_size, force):
    """Watch a built-in workload: a bulk sender to a slow reader, the same with
    TCP_NOTSENT_LOWAT, one to a reader that stalls, a UDP receiver that falls
    behind, a UNIX upstream that stopped reading, and idle connections, all
    on loopback.

    The same view as `sockdiag watch PID`, with the same keys (q quits, ?
    lists them) and --record FILE; Ctrl-C stops it early.  The workload is a
    child process, ended when the view ends.

    --json: one line per sample, each an object {"time", "pid", "name",
    "send_bps", "ack_bps", "sockets"}, as watch's.
    """
    from .. import _demo  # only this command needs it: keep `sockdiag` quick to start
    from ..views import watch as view
    from ..views.header_lines import fd_headroom_line, fixed_line, interfaces_line

    with _demo.workload(duration) as (pid, roles):
        view.run(pid, interval=interval, count=max(1, math.ceil(duration / interval)),
                 kinds=SOCKET_KINDS, as_json=as_json, record_to=record_to, max_size=max_size, overwrite=force,
                 header_lines=[interfaces_line(pid=pid), fd_headroom_line(pid),
                               *(fixed_line(line) for line in _demo.legend(roles))])
