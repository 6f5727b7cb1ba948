"""What `sockdiag watch` adds under its header: the busiest interfaces' rates,
fd headroom, byte budgets and, on macOS, a word on connections that have no
socket.

Each is a header-line source for the watch view: a callable given (sample,
previous) that returns one line or None.  Watch calls them at every sample,
in --json mode too, so a budget is checked whatever the output; a budget
that fires also prints one notice line on stderr.
"""

from __future__ import annotations

import time
from typing import Optional

import click

import sockdiag
from .._common import LINUX, MACOS, NotSupported, SockdiagError
from .._watch import HeaderLine, format_bytes
from .ifstat import busiest_interfaces_line


class SizeType(click.ParamType):
    """A byte size option: 500, 64K, 10M, 1.5G (powers of 1024)."""

    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        from ..budget import parse_size  # here: a watch without budgets starts without it

        try:
            return parse_size(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)


class OnExceedType(click.ParamType):
    """--on-exceed: "stop", "kill" or "exec CMD"; as (action, command)."""

    name = "stop|kill|exec CMD"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        action, _, command = value.strip().partition(" ")
        if action in ("stop", "kill") and not command:
            return action, None
        if action == "exec" and command.strip():
            return action, command.strip()
        self.fail(f"{value!r}: use stop, kill or 'exec COMMAND'", param, ctx)


def budget_options(command):
    """--budget-sent, --budget-received and --on-exceed, stacked on a command."""
    command = click.option(
        "--on-exceed", type=OnExceedType(), default=None,
        help="What to do, once, when a budget is passed: stop (SIGSTOP), kill (SIGKILL) or "
             "'exec CMD' (runs CMD with SOCKDIAG_PID, SOCKDIAG_DIRECTION, SOCKDIAG_BUDGET_BYTES, "
             "SOCKDIAG_USED_BYTES set).  Default: only report it.")(command)
    command = click.option(
        "--budget-received", type=SizeType(), default=None, metavar="SIZE",
        help="Report (and --on-exceed) when the process has received SIZE bytes over TCP "
             "since the watch started (e.g. 500M).")(command)
    command = click.option(
        "--budget-sent", type=SizeType(), default=None, metavar="SIZE",
        help="Report (and --on-exceed) when the process has sent SIZE bytes over TCP "
             "since the watch started (e.g. 1G; retransmissions count).")(command)
    return command


def interfaces_line(n: int = 2) -> HeaderLine:
    """The n busiest interfaces' byte rates since the previous sample."""
    previous: list = []  # [(monotonic seconds, interfaces())] of the last call

    def line(_sample, _previous) -> Optional[str]:
        try:
            now = (time.monotonic(), sockdiag.interfaces())
        except SockdiagError:
            return None  # the socket view matters more than this line
        before = previous[0] if previous else None
        previous[:] = [now]
        if before is None:
            return "interfaces: rates from the next sample"
        return "interfaces: " + (busiest_interfaces_line(before[1], now[1], now[0] - before[0], n) or "none")

    return line


def fd_headroom_line(pid: int) -> HeaderLine:
    """Open fds against RLIMIT_NOFILE, with a warning within 10% of it."""

    def line(_sample, _previous) -> Optional[str]:
        try:
            headroom = sockdiag.fd_headroom(pid)
        except SockdiagError:
            return None  # the view itself reports a process that is gone
        if headroom.soft_limit is None:
            return f"fds {headroom.open_fds} (RLIMIT_NOFILE not readable for this process)" if MACOS \
                else f"fds {headroom.open_fds} (no RLIMIT_NOFILE limit)"
        text = f"fds {headroom.open_fds} of {headroom.soft_limit} (RLIMIT_NOFILE soft limit)"
        if headroom.near_limit:
            text += ("  WARNING: within 10% of the limit: new connections will fail "
                     "with 'Too many open files'")
        return text

    return line


def budget_line(pid: int, sent: Optional[int], received: Optional[int],
                on_exceed: Optional[tuple[str, Optional[str]]]) -> HeaderLine:
    """Progress against the byte budgets; acts once when one is passed (Linux)."""
    from .. import budget as budgets
    from ..accounting import NOT_ON_THIS_PLATFORM

    if not LINUX:
        raise NotSupported(f"byte budgets: {NOT_ON_THIS_PLATFORM}")
    action, command = on_exceed or ("report", None)
    monitor = budgets.BudgetMonitor(budgets.ByteBudget(pid, sent, received, action, command))
    used = {"sent": 0, "received": 0}

    def line(_sample, _previous) -> Optional[str]:
        row, fired = monitor.poll()
        if row is not None:
            used["sent"], used["received"] = row.total_sent_bytes or 0, row.total_received_bytes or 0
        if fired is not None:
            click.echo(f"sockdiag: budget passed: {fired.detail}", err=True)
        parts = [f"{direction} {format_bytes(used[direction])} of {format_bytes(limit)}"
                 for direction, limit in (("sent", sent), ("received", received)) if limit is not None]
        state = (f"PASSED ({monitor.budget.fired.direction}), {action} done" if monitor.budget.fired
                 else f"on exceed: {action}")
        return "budget: " + ", ".join(parts) + f"  [{state}]"

    return line


def userspace_networking_line(pid: int) -> HeaderLine:
    """macOS: says so when some of pid's connections have no socket (Skywalk channels)."""

    def line(_sample, _previous) -> Optional[str]:
        try:
            return sockdiag.userspace_networking(pid).hint
        except SockdiagError:
            return None

    return line


def watch_header_lines(pid: int, budget_sent: Optional[int], budget_received: Optional[int],
                       on_exceed: Optional[tuple[str, Optional[str]]]) -> list[HeaderLine]:
    """The lines `sockdiag watch` shows under its header for these options."""
    if on_exceed is not None and budget_sent is None and budget_received is None:
        raise click.UsageError("--on-exceed needs --budget-sent or --budget-received")
    lines = [interfaces_line(), fd_headroom_line(pid)]
    if budget_sent is not None or budget_received is not None:
        lines.append(budget_line(pid, budget_sent, budget_received, on_exceed))
    if MACOS:
        lines.append(userspace_networking_line(pid))
    return lines
