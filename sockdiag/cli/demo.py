"""`sockdiag demo`: watch a built-in workload, live (the README's first command)."""

from __future__ import annotations

import math

import click

from .. import _watch
from . import options


def _legend(roles: dict) -> list[str]:
    """Header lines saying which fd plays which part."""
    from .. import _demo

    lowat = _watch.format_bytes(_demo.LOWAT)
    rate = _watch.format_bytes(_demo.READ_RATE)
    idle = ", ".join(str(fd) for fd in roles["idle"])
    return [
        f"demo: fd {roles['bulk']} writes flat out to a reader taking {rate}/s: bytes wait UNSENT",
        f"      fd {roles['paced']} same, IPv6, TCP_NOTSENT_LOWAT {lowat}: the writer waits instead",
        f"      fds {roles['slow_reader']}, {roles['paced_reader']}: the readers (RECV-Q); "
        f"fds {idle}: idle connections",
    ]


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
        legend = _legend(roles)
        _watch.run(pid, interval=interval, count=max(1, math.ceil(duration / interval)),
                   as_json=as_json, header_lines=[lambda sample, previous, i=i: legend[i]
                                                  for i in range(len(legend))])
