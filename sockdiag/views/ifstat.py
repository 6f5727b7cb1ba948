"""The ifstat view (``sockdiag ifstat``): interface counters with per-second rates, live."""

from __future__ import annotations

import json
import sys
import time
from typing import Mapping, Optional, TextIO

from .. import _platform
from .._common import InterfaceCounters, InterfaceRates, SockdiagError, interface_rates
from ..fields import INTERFACE_FIELDS, columns, format_decimal, row
from .live import Screen, every

COLUMNS = ("IFACE", "STATE", "MTU", "RX/s", "TX/s", "RX pkt/s", "TX pkt/s",
           "RX total", "TX total", "ERR rx/tx", "DROP rx/tx")
_COLUMN_FIELDS = columns(INTERFACE_FIELDS, COLUMNS)


def busiest_interfaces_line(
    before: Mapping[str, InterfaceCounters],
    after: Mapping[str, InterfaceCounters],
    elapsed_s: float,
    n: int = 2,
) -> str:
    """One line with the rates of the n interfaces moving the most bytes.

    For headers of live views (``sockdiag watch``): "eth0 rx 1.2 MB/s tx
    34.0 kB/s · lo rx 0 B/s tx 0 B/s".  Empty when no interface has a rate.
    """
    rates = [r for r in interface_rates(before, after, elapsed_s).values()
             if r.rx_bytes_per_s is not None or r.tx_bytes_per_s is not None]
    rates.sort(key=lambda r: r.total_bytes_per_s, reverse=True)
    return " · ".join(
        f"{r.name} rx {format_decimal(r.rx_bytes_per_s, 'B/s')} tx {format_decimal(r.tx_bytes_per_s, 'B/s')}"
        for r in rates[:n])


def restrict(sample: dict[str, InterfaceCounters], wanted: frozenset[str]) -> dict[str, InterfaceCounters]:
    """The sample restricted to the wanted names (all when none are given)."""
    if not wanted:
        return sample
    unknown = sorted(wanted - sample.keys())
    if unknown:
        raise SockdiagError(
            f"no interface named {', '.join(unknown)} (there are: {', '.join(sorted(sample))})")
    return {name: counters for name, counters in sample.items() if name in wanted}


def table_rows(sample: Mapping[str, InterfaceCounters],
               rates: Mapping[str, InterfaceRates]) -> list[tuple]:
    """One table row (COLUMNS) per interface, by index."""
    return [row(_COLUMN_FIELDS, counters, rates.get(counters.name))
            for counters in sorted(sample.values(), key=lambda c: (c.index is None, c.index, c.name))]


def render(wall_time: float, interval: float, sample: Mapping[str, InterfaceCounters],
           rates: Mapping[str, InterfaceRates]) -> str:
    """The screen for one sample: a title, then the table."""
    from .table import table

    return (f"sockdiag ifstat  {time.strftime('%H:%M:%S', time.localtime(wall_time))}"
            f"  every {interval:g} s\n"
            + table(table_rows(sample, rates), COLUMNS, left_aligned=("IFACE", "STATE"), spaced=True))


def json_line(wall_time: float, sample: Mapping[str, InterfaceCounters],
              rates: Mapping[str, InterfaceRates]) -> str:
    """One sample as one JSON object: {"time", "interfaces": {name: {counters, rates}}}."""
    nulls = dict.fromkeys(("rx_bytes_per_s", "tx_bytes_per_s", "rx_packets_per_s", "tx_packets_per_s"))
    body = {}
    for name, counters in sample.items():
        entry = counters.asdict()
        del entry["name"]
        rate = rates.get(name)
        entry.update(nulls if rate is None else
                     {key: value for key, value in rate.asdict().items() if key != "name"})
        body[name] = entry
    return json.dumps({"time": wall_time, "interfaces": body})


def run(interval: float, count: Optional[int], wanted: frozenset[str] = frozenset(), *,
        once: bool = False, as_json: bool = False, out: Optional[TextIO] = None) -> None:
    """Sample the wanted interfaces (all when empty) every interval seconds,
    count times (None: until Ctrl-C or SIGTERM: KeyboardInterrupt), and show each sample.

    Rates need two samples: the first shows none.  ``once``: two samples an
    interval apart, only the second shown, with its rates.
    """
    samples = 2 if once else count
    previous: Optional[dict[str, InterfaceCounters]] = None
    previous_at = 0.0

    def update() -> None:
        nonlocal previous, previous_at
        started = time.monotonic()
        sample = restrict(_platform.interfaces(), wanted)
        rates = {} if previous is None else interface_rates(previous, sample, started - previous_at)
        wall_time = time.time()
        first = previous is None
        previous, previous_at = sample, started
        if once and first:
            return  # only the start of the rates
        screen.show(lambda: json_line(wall_time, sample, rates),
                    lambda _lines, _width: render(wall_time, interval, sample, rates))

    with Screen(out or sys.stdout, as_json=as_json, one_screen=once or samples == 1) as screen:
        every(interval, samples, update, reraise_interrupt=True)
