"""`sockdiag bench`: benchmarks that reproduce socket-tuning effects on this machine."""

from __future__ import annotations

import contextlib
import json
import os
import sys

import click

from .. import lowat as lowat_bench
from .._common import LINUX, figure_class
from .._exceptions import NotSupported
from .._validate import format_size, parse_size
from ..lowat import report, units
from . import options


def _check_plot_directory(plot_path: str) -> None:
    """A usage error now, not after minutes of sweeping, when --plot cannot be written."""
    directory = os.path.dirname(os.path.abspath(plot_path))
    if not os.access(directory, os.W_OK):
        raise click.BadParameter(f"cannot write into {directory}", param_hint="'--plot'")


@click.group()
def bench() -> None:
    """Benchmarks that reproduce socket-tuning effects on this machine."""


@bench.command()
@options.lowat_options
@options.json_output
def lowat(lowats, ccs, sndbufs, writer, nodelay, eor, stamp_every, duration, warmup, repeat, flows,
          message_size, rates, queue_latency, delay, quick, plot_path, as_json) -> None:
    """Sweep TCP_NOTSENT_LOWAT over a shaped path and recommend a value.

    As root, builds three network namespaces (sender, router, receiver)
    with a TBF bottleneck and a base delay on the router, and removes them
    when done (also on Ctrl-C, and leftovers of a killed run).  Without root it runs on
    loopback, with no bottleneck, and says so.  Per setting: application
    latency, time in the send buffer, goodput, unsent/unacked, CPU,
    context switches, send calls, EAGAINs and wakeups per MB.  Linux only.

    --json: one object {"path", "config", "results", "recommendations"}.
    """
    if not LINUX:
        raise NotSupported("sockdiag bench lowat runs on Linux only "
                           "(network namespaces, TCP_NOTSENT_LOWAT wakeups, SO_TIMESTAMPING)")
    defaults = options.LOWAT_QUICK_SWEEP if quick else options.LOWAT_FULL_SWEEP
    duration = defaults["duration"] if duration is None else duration
    warmup = min(defaults["warmup"], duration / 2) if warmup is None else warmup
    if warmup >= duration:
        raise click.BadParameter(f"{warmup:g} s leaves nothing of a {duration:g} s run",
                                 param_hint="'--warmup'")
    if plot_path is not None:
        figure_class()  # refused before the sweep, not after it
        _check_plot_directory(plot_path)
    config = lowat_bench.SweepConfig(
        lowats=tuple(dict.fromkeys(lowats or map(units.parse_lowat, defaults["lowats"]))),
        rates_bps=tuple(dict.fromkeys(rates or [units.parse_rate(options.LOWAT_DEFAULT_RATE)])),
        ccs=tuple(dict.fromkeys(ccs or [lowat_bench.default_cc()])),
        sndbufs=tuple(dict.fromkeys(sndbufs or [None])),
        writer=writer, nodelay=nodelay, duration_s=duration, warmup_s=warmup,
        repeat=defaults["repeat"] if repeat is None else repeat,
        flows=flows, message_size=message_size, stamp_every=stamp_every, eor=eor)

    with contextlib.ExitStack() as stack:
        bars = []

        def on_path(info) -> None:
            for notice in info.notices:
                click.echo(f"sockdiag: notice: {notice}", err=True)
            if sys.stderr.isatty():  # the bar starts below the notices
                bars.append(stack.enter_context(click.progressbar(
                    length=lowat_bench.run_count(config, info), label="lowat sweep",
                    file=sys.stderr, show_pos=True,
                    item_show_func=lambda cell: cell and cell.label)))

        def on_run(cell) -> None:
            for bar in bars:
                bar.update(1, cell)

        result = lowat_bench.benchmark(config, queue_latency, delay,
                                       on_path=on_path, on_run=on_run)

    if plot_path is not None:
        report.plot(list(result.results), result.path, plot_path)
    if as_json:
        click.echo(json.dumps(report.document(
            result.path, result.config, result.results, result.recommendations)))
        return
    click.echo(report.describe_path(result.path))
    click.echo(f"{len(result.results)} settings x "
               f"{config.repeat} runs of {duration:g} s ({warmup:g} s warm-up), "
               f"{config.flows} flow(s), {format_size(message_size)} messages, "
               f"writer {writer}{', TCP_NODELAY' if nodelay else ''}, "
               f"MSG_EOR on {'every write' if eor or stamp_every == 1 else f'one write in {stamp_every}'}; "
               "medians of the runs")
    click.echo()
    click.echo(report.table(list(result.results)))
    click.echo()
    for line in report.recommendation_lines(result.recommendations):
        click.echo(line)


@bench.command()
@options.rcvbuf_options
@options.json_output
def rcvbuf(rcvbufs, rate, datagram_size, burst, service, duration, force, quick, plot_path,
           as_json) -> None:
    """Sweep SO_RCVBUF of a UDP receiver that bursts overwhelm, and recommend a size.

    On loopback, a sender sends bursts of datagrams at an average rate to
    a receiver that spends a fixed time on each; once per size.  Per size:
    what the kernel granted (and whether net.core.rmem_max capped it), the
    datagrams sent, read and dropped (the socket's own drop count), and the
    time they waited in the queue (kernel receive stamp to read); then the
    smallest size that kept drops within 0.1%, and where quic-go's 7.5 MB
    holds.  Linux only.

    --json: one object {"kernel", "rmem_max", "rmem_default", "config",
    "notices", "results", "recommendation", "quic_go"}.
    """
    from .. import rcvbuf as rcvbuf_bench

    if not LINUX:
        raise NotSupported("sockdiag bench rcvbuf runs on Linux only (SO_MEMINFO drops)")
    defaults = options.RCVBUF_QUICK_SWEEP if quick else options.RCVBUF_FULL_SWEEP
    if plot_path is not None:
        figure_class()  # refused before the sweep, not after it
        _check_plot_directory(plot_path)
    config = rcvbuf_bench.RcvbufConfig(
        rcvbufs=tuple(dict.fromkeys(rcvbufs or map(parse_size, defaults["rcvbufs"]))),
        rate_bps=rate, datagram_size=datagram_size, burst=burst, service_us=service,
        duration_s=defaults["duration"] if duration is None else duration, force=force)
    with contextlib.ExitStack() as stack:
        on_run = None
        if sys.stderr.isatty():
            bar = stack.enter_context(click.progressbar(
                length=rcvbuf_bench.run_count(config), label="rcvbuf sweep", file=sys.stderr,
                show_pos=True, item_show_func=lambda r: r and f"SO_RCVBUF {format_size(r.requested)}"))
            on_run = lambda result: bar.update(1, result)  # noqa: E731
        result = rcvbuf_bench.benchmark(config, on_run=on_run)
    for notice in result.notices:
        click.echo(f"sockdiag: notice: {notice}", err=True)
    if plot_path is not None:
        rcvbuf_bench.plot(result, plot_path)
    if as_json:
        click.echo(json.dumps(result.asdict()))
        return
    click.echo(rcvbuf_bench.describe(result))
    click.echo()
    click.echo(rcvbuf_bench.table(result.results))
    click.echo()
    for line in rcvbuf_bench.recommendation_lines(result):
        click.echo(line)
