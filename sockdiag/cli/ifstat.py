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
def ifstat(interval: float, count: Optional[int], once: bool, as_json: bool,
           wanted: frozenset[str]) -> None:
    """Interface counters with per-second rates, every --interval seconds.

    Rates need two samples: the first one shows "—" (null in --json).
    --once takes two samples an interval apart and prints the second, with
    its rates.
    """
    from ..views import ifstat as view

    view.run(interval, count, wanted, once=once, as_json=as_json)
