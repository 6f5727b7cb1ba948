"""`sockdiag ifstat`: interface counters with per-second rates, live."""

from __future__ import annotations

from typing import Optional

import click

from . import options


@click.command()
@options.interval
@options.count
@options.once
@options.json_output
@options.interface_filter
@options.recording
def ifstat(interval: float, count: Optional[int], once: bool, as_json: bool,
           wanted: frozenset[str], record_to: Optional[str], max_size: Optional[int], force: bool) -> None:
    """Interface counters with per-second rates, every --interval seconds.

    Rates need two samples: the first one shows "-" (null in --json).
    --once takes two samples an interval apart and prints the second, with
    its rates.

    In a terminal: q quits, p pauses, < and > move the sort column, / filters
    by name, Enter opens the chosen interface (Esc goes back), ? lists the
    keys.  --record FILE keeps every sample (sockdiag plot draws it).

    --json: one line per sample shown, each an object {"time", "interfaces"}.
    """
    from ..views import ifstat as view

    view.run(interval, count, wanted, once=once, as_json=as_json, record_to=record_to, max_size=max_size,
             overwrite=force)
