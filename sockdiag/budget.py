"""Byte budgets for one process: notice, once, when it has sent or received more
than allowed, and act on it (report, stop, kill, or run a command).

The bytes are the process's TCP traffic as sockdiag.accounting counts it
(live sockets plus those closed between samples), from when the budget
started.  A budget is checked at each sample, so it fires at the first
sample after the total passes it: the interval is the resolution.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Optional

from ._common import LINUX, BudgetExceeded, ProcessTraffic
from ._exceptions import AccessDenied, NoSuchProcess, NotSupported
from ._validate import BYTES, PID
from .accounting import NOT_ON_THIS_PLATFORM, TrafficAccountant

ACTIONS = ("report", "stop", "kill", "exec")


class ByteBudget:
    """Limits on what one process sends and receives, checked against running totals.

    ``sent_bytes`` / ``received_bytes``: the budgets (``None``: no limit).
    ``action``: one of ACTIONS; "exec" runs ``command`` with ``/bin/sh -c``
    and SOCKDIAG_PID, SOCKDIAG_DIRECTION, SOCKDIAG_BUDGET_BYTES and
    SOCKDIAG_USED_BYTES in its environment, without waiting for it.
    The budget fires once: the first check that finds a total at or past
    its limit acts and returns a BudgetExceeded; later checks return None.
    """

    def __init__(self, pid: int, sent_bytes: Optional[int] = None, received_bytes: Optional[int] = None,
                 action: str = "report", command: Optional[str] = None) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
        if (action == "exec") != bool(command):
            raise ValueError("a command goes with the exec action, and only with it")
        if sent_bytes is None and received_bytes is None:
            raise ValueError("a budget needs a sent or a received limit")
        self.pid = PID.check(pid, "pid")
        self.sent_bytes = None if sent_bytes is None else BYTES.check(sent_bytes, "sent_bytes")
        self.received_bytes = (None if received_bytes is None
                               else BYTES.check(received_bytes, "received_bytes"))
        self.action = action
        self.command = command
        self.fired: Optional[BudgetExceeded] = None
        self.child: Optional[subprocess.Popen] = None  # the exec action's command

    def check(self, sent_total: Optional[int], received_total: Optional[int]) -> Optional[BudgetExceeded]:
        """Act if a total has reached its budget for the first time; the event, else None."""
        if self.fired is not None:
            return None
        for direction, limit, used in (("sent", self.sent_bytes, sent_total),
                                       ("received", self.received_bytes, received_total)):
            if limit is not None and used is not None and used >= limit:
                self.fired = BudgetExceeded(self.pid, direction, limit, used, self.action,
                                            self._act(direction, limit, used))
                return self.fired
        return None

    def _act(self, direction: str, limit: int, used: int) -> str:
        what = f"pid {self.pid} {direction} {used} bytes, budget {limit}"
        if self.action == "report":
            return what
        if self.action == "exec":
            env = dict(os.environ, SOCKDIAG_PID=str(self.pid), SOCKDIAG_DIRECTION=direction,
                       SOCKDIAG_BUDGET_BYTES=str(limit), SOCKDIAG_USED_BYTES=str(used))
            self.child = subprocess.Popen(["/bin/sh", "-c", self.command], env=env)
            return f"{what}: started `{self.command}` (pid {self.child.pid})"
        number = signal.SIGSTOP if self.action == "stop" else signal.SIGKILL
        try:
            os.kill(self.pid, number)
        except ProcessLookupError as err:
            raise NoSuchProcess(self.pid) from err
        except PermissionError as err:
            raise AccessDenied(self.pid, f"not allowed to signal pid {self.pid}: run as root "
                                         "or as the same user as the process") from err
        return f"{what}: sent {number.name}"


class BudgetMonitor:
    """A ByteBudget fed with its process's traffic by a TrafficAccountant of its own.

    Totals count from the monitor's creation: ``sent_total`` and
    ``received_total`` are the bytes seen by the last ``poll()``.  Call
    ``poll()`` at each refresh; ``close()`` when done.  Availability: Linux
    (NotSupported elsewhere).
    """

    def __init__(self, budget: ByteBudget) -> None:
        if not LINUX:
            raise NotSupported(f"byte budgets: {NOT_ON_THIS_PLATFORM}")
        self.budget = budget
        self.sent_total = 0
        self.received_total = 0
        self._accountant = TrafficAccountant(pids=[budget.pid])

    def poll(self) -> tuple[Optional[ProcessTraffic], Optional[BudgetExceeded]]:
        """(the process's traffic since the last poll or None if it had none, a firing or None)."""
        rows = [row for row in self._accountant.sample().processes if row.pid == self.budget.pid]
        if not rows:
            return None, None
        row = rows[0]
        self.sent_total, self.received_total = row.total_sent_bytes or 0, row.total_received_bytes or 0
        return row, self.budget.check(row.total_sent_bytes, row.total_received_bytes)

    def close(self) -> None:
        """Release the accountant's netlink socket."""
        self._accountant.close()

    def __enter__(self) -> "BudgetMonitor":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
