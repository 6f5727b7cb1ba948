"""`sockdiag watch PID`: every socket of a process, live."""

from __future__ import annotations

import click

from ..views import watch as view
from ..views.header_lines import watch_header_lines
from ..views.live import Notices
from . import options


@click.command()
@click.argument("pid", type=options.PID, required=False)
@options.watch_cgroup
@options.interval
@options.count
@options.once
@options.json_output
@options.watch_sort
@options.kinds
@options.states
@options.ports
@options.budgets
@options.recording
@options.replay
def watch(pid, cgroup_path, interval, count, once, as_json, sort, kinds, states, ports, budget_sent,
          budget_received, on_exceed, record_to, max_size, force, replay):
    """Every socket of process PID, live: where each connection's bytes are.

    TCP, UDP and UNIX sockets (--kind).  Per socket: UNACKED (sent, not yet
    acknowledged), UNSENT (written by the application, still queued in the
    kernel), FREE (room before a writer blocks), SNDBUF, RECV-Q, DROPS/s,
    ACKED/s (since the last sample), Q-DELAY (unsent over the rate the queue
    drains, or STALLED), LIMIT (why bytes wait) and RTT.  Columns that do not fit the terminal
    are dropped, SNDBUF first.  The header also shows the two busiest
    interfaces' rates and the process's open fds against its RLIMIT_NOFILE.  --budget-sent / --budget-received report
    (and --on-exceed act on) a process passing a byte budget, once.  Needs
    root or the process's own user.

    In a terminal: q quits, p pauses, < and > move the sort column, / filters,
    Enter opens the chosen connection (Esc goes back), ? lists the keys.
    --record FILE keeps every sample; --replay FILE plays one back.

    --json: one line per sample, each an object {"time", "pid", "name",
    "send_bps", "ack_bps", "sockets"} (--cgroup adds "cgroup" and "pids").
    """
    if replay is not None:
        # What acts on a live process cannot act on a recording; the filters and the pace apply.
        refused = [name for name, value in (("a PID", pid), ("--cgroup", cgroup_path), ("--record", record_to),
                                            ("--budget-sent", budget_sent), ("--budget-received", budget_received),
                                            ("--on-exceed", on_exceed)) if value is not None]
        if refused:
            raise click.UsageError(f"--replay plays a recording back: it takes no {', '.join(refused)}")
        pace = None if click.get_current_context().get_parameter_source("interval") \
            is click.core.ParameterSource.DEFAULT else interval
        return view.replay(replay, count=1 if once else count, as_json=as_json, sort=sort, states=states,
                           ports=ports, kinds=kinds, interval=pace)
    if (pid is None) == (cgroup_path is None):
        raise click.UsageError("give a PID or --cgroup PATH (or --replay FILE)")
    if cgroup_path is not None:
        if budget_sent is not None or budget_received is not None or on_exceed is not None:
            raise click.UsageError("byte budgets watch a PID, not a --cgroup")
        from .. import _platform

        if not hasattr(_platform, "open_cgroup"):
            raise click.UsageError("--cgroup is available on Linux only")
        return view.run(None, interval=interval, count=1 if once else count, as_json=as_json,
                        sort=sort, kinds=kinds, states=states, ports=ports,
                        cgroup=_platform.open_cgroup(cgroup_path),
                        record_to=record_to, max_size=max_size, overwrite=force)
    monitor = None
    if budget_sent is not None or budget_received is not None:
        from ..budget import BudgetMonitor, ByteBudget  # a watch without budgets starts without them

        action, command = on_exceed or ("report", None)
        monitor = BudgetMonitor(ByteBudget(pid, budget_sent, budget_received, action, command))
    elif on_exceed is not None:
        raise click.UsageError("--on-exceed needs --budget-sent or --budget-received")
    # The last sample is returned to main(), which keeps it until the process
    # ends: freeing 19,000 socket structs one by one takes 15 ms.
    notices = Notices()
    try:
        return view.run(pid, interval=interval, count=1 if once else count, as_json=as_json,
                        sort=sort, kinds=kinds, states=states, ports=ports,
                        header_lines=watch_header_lines(pid, notices, monitor), notices=notices,
                        record_to=record_to, max_size=max_size, overwrite=force)
    finally:
        # Its accountant holds a netlink socket and, as root, a trace instance;
        # main() ends the process without running atexit.
        if monitor is not None:
            monitor.close()
