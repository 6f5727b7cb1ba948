"""`sockdiag demo`: watch a built-in workload, live (the README's first command)."""

from __future__ import annotations

import math

import click

from .. import _watch
from . import options
from .header_lines import fd_headroom_line, interfaces_line


def _fixed(line: str) -> _watch.HeaderLine:
    return lambda sample, previous: line


@click.command()
@click.option("--duration", "-d", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Seconds the workload runs.")
@options.interval
@options.json_output
def demo(duration, interval, as_json):
    """Watch a built-in workload: a bulk sender to a slow reader, the same with
    TCP_NOTSENT_LOWAT, and idle connections, all on loopback.

    The same view as `sockdiag watch PID`; Ctrl-C stops it early.  The
    workload is a child process, ended when the view ends.
    """
    from .. import _demo  # only this command needs it: keep `sockdiag` quick to start

    with _demo.workload(duration) as (pid, roles):
        _watch.run(pid, interval=interval, count=max(1, math.ceil(duration / interval)),
                   as_json=as_json,
                   header_lines=[interfaces_line(), fd_headroom_line(pid),
                                 *(_fixed(line) for line in _demo.legend(roles))])
