"""What `sockdiag watch` adds under its header: the busiest interfaces' rates,
fd headroom, byte budgets and, on macOS, a word on connections that have no
socket.

Each is a header line for the watch view: a callable given (sample,
previous) that returns one line or None.  Watch calls them at every sample,
in --json mode too, so a budget is checked whatever the output; a budget
that fires also says one notice line (through the view's Notices: after a
live screen, at once otherwise).
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from .. import _platform
from .._common import MACOS
from .._exceptions import SockdiagError
from ..fields import format_bytes
from .ifstat import busiest_interfaces_line
from .watch import HeaderLine


def fixed_line(text: str) -> HeaderLine:
    """The same line under every sample."""
    return lambda _sample, _previous: text


def interfaces_line(n: int = 2, pid: int = 0) -> HeaderLine:
    """The n busiest interfaces' byte rates since the previous sample, of
    pid's network namespace (0: sockdiag's own)."""
    previous: list = []  # [(monotonic seconds, interfaces())] of the last call

    def line(_sample, _previous) -> Optional[str]:
        try:
            now = (time.monotonic(), _platform.interfaces(pid))
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
            headroom = _platform.fd_headroom(pid)
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


def budget_line(monitor, notice: Callable[[str], None]) -> HeaderLine:
    """Progress of a budget.BudgetMonitor, polled at each sample (which may
    act on it); notice(line) says once that it passed."""
    budget = monitor.budget

    def line(_sample, _previous) -> Optional[str]:
        fired = monitor.poll()[1]
        if fired is not None:
            notice(f"sockdiag: budget passed: {fired.detail}")
        parts = [f"{direction} {format_bytes(used)} of {format_bytes(limit)}"
                 for direction, limit, used in (("sent", budget.sent_bytes, monitor.sent_total),
                                                ("received", budget.received_bytes, monitor.received_total))
                 if limit is not None]
        state = (f"PASSED ({budget.fired.direction}), {budget.action} done" if budget.fired
                 else f"on exceed: {budget.action}")
        return "budget: " + ", ".join(parts) + f"  [{state}]"

    return line


def userspace_networking_line(pid: int) -> HeaderLine:
    """macOS: says so when some of pid's connections have no socket (Skywalk channels)."""

    def line(_sample, _previous) -> Optional[str]:
        try:
            return _platform.userspace_networking(pid).hint
        except SockdiagError:
            return None

    return line


def watch_header_lines(pid: int, notice: Callable[[str], None], budget_monitor=None) -> list[HeaderLine]:
    """The lines `sockdiag watch` shows under its header (with a budget's when
    given, which says through notice, the view's Notices, that it passed)."""
    lines = [interfaces_line(pid=pid), fd_headroom_line(pid)]
    if budget_monitor is not None:
        lines.append(budget_line(budget_monitor, notice))
    if MACOS:
        lines.append(userspace_networking_line(pid))
    return lines
