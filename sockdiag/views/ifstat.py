"""The ifstat view (``sockdiag ifstat``): interface counters with per-second rates, live."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Mapping, Optional, Sequence, TextIO

from .. import _platform
from .._common import InterfaceCounters, InterfaceRates
from .._exceptions import SockdiagError
from .._watch import interface_rates
from ..fields import (INTERFACE_FIELDS, INTERFACE_SORTS, columns, detail_values, format_decimal,
                      history_fields, json_object, row, sorted_items)
from .live import NOT_SHOWN, Notices, Screen, highlighted, run_view

COLUMNS = ("IFACE", "STATE", "MTU", "RX/s", "TX/s", "RX pkt/s", "TX pkt/s",
           "RX total", "TX total", "ERR rx/tx", "DROP rx/tx")
_COLUMN_FIELDS = columns(INTERFACE_FIELDS, COLUMNS)
# The detail view's histories.
_HISTORY = history_fields(INTERFACE_FIELDS)


def busiest_interfaces_line(
    before: Mapping[str, InterfaceCounters],
    after: Mapping[str, InterfaceCounters],
    elapsed_s: float,
    n: int = 2,
) -> str:
    """One line with the rates of the n interfaces moving the most bytes.

    For headers of live views (``sockdiag watch``): "eth0 rx 1.2 MB/s tx
    34.0 kB/s · lo rx 0 B/s tx 0 B/s".  An interface that is down moves
    nothing and is left out.  Empty when no interface has a rate.
    """
    rates = [r for r in interface_rates(before, after, elapsed_s).values()
             if (r.rx_bytes_per_s is not None or r.tx_bytes_per_s is not None)
             and after[r.name].is_up is not False]
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


def ordered(sample: Mapping[str, InterfaceCounters], rates: Mapping[str, InterfaceRates],
            sort: str = "index") -> list[InterfaceCounters]:
    """The interfaces by a sort of fields.INTERFACE_SORTS: the kernel's order
    ("index"), names in order, quantities largest first, unknown last."""
    by_index = sorted_items(sample.values(), INTERFACE_FIELDS, "index")
    return sorted_items(by_index, INTERFACE_FIELDS, sort, lambda c: rates.get(c.name))


def table_rows(interfaces: Sequence[InterfaceCounters], rates: Mapping[str, InterfaceRates]) -> list[tuple]:
    """One table row (COLUMNS) per interface, in the order given."""
    return [row(_COLUMN_FIELDS, counters, rates.get(counters.name)) for counters in interfaces]


def render(wall_time: float, interval: float, sample: Mapping[str, InterfaceCounters],
           rates: Mapping[str, InterfaceRates], controls=None) -> str:
    """The screen for one sample: a title, then the table.  ``controls`` (in a
    terminal): their sort and filter (a name) apply, the chosen row is highlighted."""
    from .table import table

    interfaces = ordered(sample, rates)
    if controls is not None:
        interfaces = [c for c in ordered(sample, rates, controls.sort) if controls.matches(c.name)]
    text = table(table_rows(interfaces, rates), COLUMNS, left_aligned=("IFACE", "STATE"), spaced=True)
    if controls is not None:
        text = highlighted(text, controls, [c.name for c in interfaces])
    return (f"sockdiag ifstat  {time.strftime('%H:%M:%S', time.localtime(wall_time))}"
            f"  every {interval:g} s\n" + text)


def detail(sample: Mapping[str, InterfaceCounters], rates: Mapping[str, InterfaceRates], name: str,
           series: list, max_lines: int, max_width: int, scroll: int = 0) -> str:
    """One interface in depth: its rates' histories (series), then every field, as the table shows it."""
    from .keys import detail_screen

    counters = sample.get(name)
    if counters is None:
        return detail_screen(f"{name}: gone (Esc: back)", series, [], max_lines, max_width, scroll)
    values = detail_values(INTERFACE_FIELDS, counters, rates.get(name))
    return detail_screen(f"interface {name}", series, values, max_lines, max_width, scroll)


def json_line(wall_time: float, sample: Mapping[str, InterfaceCounters],
              rates: Mapping[str, InterfaceRates]) -> str:
    """One sample as one JSON object: {"time", "interfaces": {name: {counters, rates}}}
    (rates null on the first sample)."""
    body = {name: json_object(INTERFACE_FIELDS, counters, rates.get(name))
            for name, counters in sample.items()}
    return json.dumps({"time": wall_time, "interfaces": body})


def run(interval: float, count: Optional[int], wanted: frozenset[str] = frozenset(), *,
        once: bool = False, as_json: bool = False, out: Optional[TextIO] = None,
        record_to: Optional[str] = None, max_size: Optional[int] = None, overwrite: bool = False) -> None:
    """Sample the wanted interfaces (all when empty) every interval seconds,
    count times (None: until q, or Ctrl-C or SIGTERM: KeyboardInterrupt), and show each sample.

    Rates need two samples: the first shows none.  ``once``: two samples an
    interval apart, only the second shown, with its rates.  ``record_to``: a
    file every sample is also written to (sockdiag.recording_file), bounded
    by max_size bytes; overwrite: it may replace a recording.
    """
    samples = 2 if once else count
    previous: Optional[dict[str, InterfaceCounters]] = None
    previous_at = 0.0

    def take():
        nonlocal previous, previous_at
        started = time.monotonic()
        sample = restrict(_platform.interfaces(), wanted)
        rates = {} if previous is None else interface_rates(previous, sample, started - previous_at)
        wall_time = time.time()
        first = previous is None
        previous, previous_at = sample, started
        if recorder is not None:
            recorder.write(wall_time, ifstat_items(sample))
        if once and first:
            return NOT_SHOWN  # only the start of the rates
        return wall_time, sample, rates

    notices = Notices()  # a recording that stops says so under the last screen
    with contextlib.ExitStack() as stack:
        recorder = None
        if record_to is not None:
            from ..recording_file import RecordingWriter, ifstat_items

            recorder = stack.enter_context(RecordingWriter(
                record_to, "ifstat", {"interval_s": interval, "started": time.time()}, max_size=max_size,
                notice=notices, overwrite=overwrite))
        screen = stack.enter_context(Screen(out or sys.stdout, as_json=as_json,
                                            one_screen=once or samples == 1, sort_keys=INTERFACE_SORTS,
                                            sort="index", notices=notices))
        run_view(screen, interval, samples, take,
                 json_line=lambda shown: json_line(*shown),
                 table=lambda shown, _lines, _width, controls: render(shown[0], interval, shown[1], shown[2],
                                                                      controls),
                 detail=lambda shown, *args: detail(shown[1], shown[2], *args),
                 history_fields=_HISTORY,
                 history_rows=lambda shown: ((name, c, shown[2].get(name)) for name, c in shown[1].items()))
