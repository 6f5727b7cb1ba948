"""`sockdiag watch PID`: every TCP socket of a process, live."""

from __future__ import annotations

import click

from .. import _watch
from .._common import TCP_STATES
from . import options
from .header_lines import budget_options, watch_header_lines

_STATE_NAMES = [name for name in TCP_STATES if name]


def _states(ctx, param, values):
    """--state values as TCP state names ("established", "close-wait" accepted)."""
    names = []
    for value in values:
        name = value.upper().replace("-", "_")
        if name not in _STATE_NAMES:
            raise click.BadParameter(
                f"{value!r} is not a TCP state (one of {', '.join(_STATE_NAMES).lower()})")
        names.append(name)
    return names or None


sort_option = click.option(
    "--sort", "-s", type=click.Choice(list(_watch.SORT_KEYS)), default="unsent", show_default=True,
    help="Column to sort by: quantities largest first, names and fds in order.")
state_option = click.option(
    "--state", "states", multiple=True, callback=_states, metavar="STATE",
    help="Only sockets in this TCP state (repeatable; e.g. established, listen, close-wait).")
port_option = click.option(
    "--port", "-p", "ports", multiple=True, type=click.IntRange(0, 65535),
    help="Only sockets with this local or remote port (repeatable).")


@click.command()
@click.argument("pid", type=int)
@options.interval
@options.count
@options.once
@options.json_output
@sort_option
@state_option
@port_option
@budget_options
def watch(pid, interval, count, once, as_json, sort, states, ports, budget_sent, budget_received, on_exceed):
    """Every TCP socket of process PID, live: where each connection's bytes are.

    Per socket: UNACKED (sent, not yet acknowledged), UNSENT (written by the
    application, still queued in the kernel), FREE (room before a writer
    blocks), SNDBUF, RECV-Q, ACKED/s (since the last sample), Q-DELAY
    (unsent / delivery rate) and RTT.  Columns that do not fit the terminal
    are dropped, SNDBUF first.  The header also shows the two busiest
    interfaces' rates and the process's open fds against its RLIMIT_NOFILE.  --budget-sent / --budget-received report
    (and --on-exceed act on) a process passing a byte budget, once.  Needs
    root or the process's own user.
    """
    # The last sample is returned to main(), which keeps it until the process
    # ends: freeing 19,000 records one by one takes 15 ms.
    return _watch.run(pid, interval=interval, count=1 if once else count, as_json=as_json,
               sort=sort, states=states, ports=ports,
               header_lines=watch_header_lines(pid, budget_sent, budget_received, on_exceed))
