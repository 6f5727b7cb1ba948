"""`sockdiag ifstat`: interface counters with per-second rates, live."""

from __future__ import annotations

import json
import sys
import time
from typing import Iterable, Iterator, Mapping, Optional

import click

from .. import interface_rates, interfaces
from .._common import InterfaceCounters, InterfaceRates, SockdiagError
from . import options

ABSENT = "—"  # no value (first sample, counter went backwards or missing): never a fake 0

HEADERS = ("IFACE", "STATE", "MTU", "RX/s", "TX/s", "RX pkt/s", "TX pkt/s",
           "RX total", "TX total", "ERR rx/tx", "DROP rx/tx")


def _decimal(value: float) -> tuple[float, str]:
    for prefix in ("", "k", "M", "G", "T"):
        if abs(value) < 1000 or prefix == "T":
            break
        value /= 1000
    return value, prefix


def human_bytes(nbytes: Optional[float], unit: str = "B") -> str:
    """Bytes in decimal units, as networks count them ("1.5 MB"); "—" for None."""
    if nbytes is None:
        return ABSENT
    value, prefix = _decimal(nbytes)
    return f"{value:.0f} {unit}" if not prefix else f"{value:.1f} {prefix}{unit}"


def human_count(count: Optional[float]) -> str:
    """A count in decimal units ("12.3k"); "—" for None."""
    if count is None:
        return ABSENT
    value, prefix = _decimal(count)
    return f"{value:.0f}" if not prefix else f"{value:.1f}{prefix}"


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
        f"{r.name} rx {human_bytes(r.rx_bytes_per_s, 'B/s')} tx {human_bytes(r.tx_bytes_per_s, 'B/s')}"
        for r in rates[:n])


def parse_interface_filter(values: Iterable[str]) -> frozenset[str]:
    """Names from repeated and comma-separated --interfaces values."""
    return frozenset(name.strip() for value in values for name in value.split(",") if name.strip())


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
    """One table row per interface, by index."""
    rows = []
    for counters in sorted(sample.values(), key=lambda c: (c.index is None, c.index, c.name)):
        rate = rates.get(counters.name)
        rows.append((
            counters.name,
            {True: "up", False: "down", None: ABSENT}[counters.is_up],
            ABSENT if counters.mtu is None else counters.mtu,
            human_bytes(rate and rate.rx_bytes_per_s, "B/s"),
            human_bytes(rate and rate.tx_bytes_per_s, "B/s"),
            human_count(rate and rate.rx_packets_per_s),
            human_count(rate and rate.tx_packets_per_s),
            human_bytes(counters.rx_bytes),
            human_bytes(counters.tx_bytes),
            f"{_plain(counters.rx_errors)}/{_plain(counters.tx_errors)}",
            f"{_plain(counters.rx_drops)}/{_plain(counters.tx_drops)}",
        ))
    return rows


def _plain(value: Optional[int]) -> str:
    return ABSENT if value is None else str(value)


def json_line(wall_time: float, sample: Mapping[str, InterfaceCounters],
              rates: Mapping[str, InterfaceRates]) -> str:
    """One sample as one JSON object: {"time", "interfaces": {name: {counters, rates}}}."""
    nulls = dict.fromkeys(("rx_bytes_per_s", "tx_bytes_per_s", "rx_packets_per_s", "tx_packets_per_s"))
    body = {}
    for name, counters in sample.items():
        row = counters.asdict()
        del row["name"]
        rate = rates.get(name)
        row.update(nulls if rate is None else
                   {key: value for key, value in rate.asdict().items() if key != "name"})
        body[name] = row
    return json.dumps({"time": wall_time, "interfaces": body})


def sampled(interval: float, count: Optional[int], wanted: frozenset[str]
            ) -> Iterator[tuple[float, dict[str, InterfaceCounters], dict[str, InterfaceRates]]]:
    """(wall time, counters, rates) every interval seconds, count times (None: forever).

    Rates are empty on the first sample.  Sleeps the interval minus the time
    the sample took, so samples stay interval apart.
    """
    previous: Optional[dict[str, InterfaceCounters]] = None
    previous_at = 0.0
    taken = 0
    while True:
        started = time.monotonic()
        sample = restrict(interfaces(), wanted)
        rates = {} if previous is None else interface_rates(previous, sample, started - previous_at)
        yield time.time(), sample, rates
        previous, previous_at = sample, started
        taken += 1
        if count is not None and taken >= count:
            return
        time.sleep(max(0.0, interval - (time.monotonic() - started)))


@click.command()
@options.interval
@options.count
@options.once
@options.json_output
@click.option(
    "--interfaces", "-I", "interface_filter", multiple=True, metavar="NAME[,NAME...]",
    help="Only these interfaces (repeat the option or separate names with commas).",
)
def ifstat(interval: float, count: Optional[int], once: bool, as_json: bool,
           interface_filter: tuple[str, ...]) -> None:
    """Interface counters with per-second rates, every --interval seconds.

    Rates need two samples: the first one shows "—" (null in --json).
    --once takes two samples an interval apart and prints the second, with
    its rates.
    """
    samples = 2 if once else count
    live = not as_json and sys.stdout.isatty() and not once and samples != 1
    for taken, (wall_time, sample, rates) in enumerate(
            sampled(interval, samples, parse_interface_filter(interface_filter))):
        if once and taken == 0:
            continue  # only the start of the rates
        if as_json:
            click.echo(json_line(wall_time, sample, rates))
        else:
            if live:
                click.clear()
            elif taken and not once:
                click.echo()
            click.echo(f"sockdiag ifstat  {time.strftime('%H:%M:%S', time.localtime(wall_time))}"
                       f"  every {interval:g} s")
            from tabulate import tabulate  # imported when a table is drawn: `watch --json` never needs it

            click.echo(tabulate(table_rows(sample, rates), headers=HEADERS,
                                colalign=("left", "left") + ("right",) * 9))
        sys.stdout.flush()
