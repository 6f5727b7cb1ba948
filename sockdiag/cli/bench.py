"""`sockdiag bench`: benchmarks that reproduce socket-tuning effects on this machine."""

from __future__ import annotations

import contextlib
import json
import os
import sys

import click

from .. import lowat as lowat_bench
from .._common import LINUX, NotSupported
from ..lowat import report, units
from . import options


class _ParsedValue(click.ParamType):
    """A click type over one of sockdiag.lowat.units' strict parsers."""

    def __init__(self, name: str, parse) -> None:
        self.name = name
        self.parse = parse

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)


class _CongestionControl(click.ParamType):
    name = "cc"

    def convert(self, value, param, ctx):
        available = lowat_bench.available_ccs()
        if value not in available:
            self.fail(f"{value!r} is not offered by this kernel (available: {' '.join(available)})",
                      param, ctx)
        return value


@contextlib.contextmanager
def _without_usage_text():
    try:
        yield
    except click.UsageError as err:
        err.ctx = None  # show() then prints only "Error: ..."
        raise


class _OneLineErrors(click.Command):
    """A command whose usage errors are one line, without the usage text."""

    def parse_args(self, ctx, args):
        with _without_usage_text():
            return super().parse_args(ctx, args)

    def invoke(self, ctx):
        with _without_usage_text():
            return super().invoke(ctx)


LOWAT = _ParsedValue("lowat", units.parse_lowat)
SNDBUF = _ParsedValue("sndbuf", units.parse_sndbuf)
SIZE = _ParsedValue("size", units.parse_size)
RATE = _ParsedValue("rate", units.parse_rate)
DURATION = _ParsedValue("duration", units.parse_duration_us)

# --quick trades repeats and length for a sweep under 30 s.
_FULL = {"lowats": ("off", "128k", "16k", "4k"), "duration": 6.0, "warmup": 2.0, "repeat": 5}
_QUICK = {"lowats": ("off", "128k", "16k"), "duration": 4.0, "warmup": 1.5, "repeat": 1}
_MIN_MESSAGE_BYTES = 16  # the 8-byte stamp and some payload
_DEFAULT_RATE = "10mbit"


@click.group()
def bench() -> None:
    """Benchmarks that reproduce socket-tuning effects on this machine."""


@bench.command(cls=_OneLineErrors)
@click.option("--lowat", "lowats", type=LOWAT, multiple=True,
              help="TCP_NOTSENT_LOWAT to try: off, a size (1m, 128k, 16k, 4k, 1) or a time target "
                   "(20ms: sockdiag.LowatTuner keeps it at delivery rate x 20 ms); repeatable. "
                   f"[default: {' '.join(_FULL['lowats'])}; "
                   f"{' '.join(_QUICK['lowats'])} with --quick]")
@click.option("--cc", "ccs", type=_CongestionControl(), multiple=True,
              help="Congestion control (one the kernel offers); repeatable. "
                   "[default: bbr, else the system default]")
@click.option("--sndbuf", "sndbufs", type=SNDBUF, multiple=True,
              help="Send buffer: auto (kernel auto-tuning) or a size for SO_SNDBUF; repeatable. "
                   "[default: auto]")
@click.option("--writer", type=click.Choice(["eagain", "epollout"]), default="eagain",
              show_default=True,
              help="eagain: on each wakeup write until the kernel refuses; "
                   "epollout: one message per EPOLLOUT wakeup.")
@click.option("--nodelay", is_flag=True,
              help="Set TCP_NODELAY on the sender: without it, Nagle holds writes smaller than "
                   "the MSS while one is unacknowledged (a small lowat on loopback hits this).")
@click.option("--stamp-every", type=click.IntRange(min=1), default=8, show_default=True,
              help="One write in this many asks for SO_TIMESTAMPING stamps and carries MSG_EOR "
                   "(1: every write; MSG_EOR then also caps the lowat overshoot at one message).")
@click.option("--duration", type=click.FloatRange(min=1.0), default=None,
              help=f"Seconds per run. [default: {_FULL['duration']:g}; "
                   f"{_QUICK['duration']:g} with --quick]")
@click.option("--warmup", type=click.FloatRange(min=0.0), default=None,
              help="Seconds at the start of each run that are not measured. "
                   f"[default: {_FULL['warmup']:g}; {_QUICK['warmup']:g} with --quick]")
@click.option("--repeat", type=click.IntRange(min=1, max=100), default=None,
              help=f"Runs per setting; the table shows medians. "
                   f"[default: {_FULL['repeat']}; {_QUICK['repeat']} with --quick]")
@click.option("--flows", type=click.IntRange(min=1, max=256), default=1, show_default=True,
              help="Parallel connections per run (socket memory grows with them).")
@click.option("--message-size", type=SIZE, default="4k", show_default=True,
              help="Bytes per application message.")
@click.option("--rate", "rates", type=RATE, multiple=True,
              help="Bottleneck rate (TBF on the router), in tc's notation; repeatable to sweep "
                   f"rates. [default: {_DEFAULT_RATE}]")
@click.option("--queue-latency", type=DURATION, default="50ms", show_default=True,
              help="TBF queue limit, as time at the bottleneck rate.")
@click.option("--delay", type=DURATION, default="20ms", show_default=True,
              help="Base delay on the ACK path (0 for none): netem, or where the kernel has no "
                   "netem a user-space delay line (a TUN device on the router), which refuses "
                   "rates above its packet-rate ceiling.")
@click.option("--quick", is_flag=True,
              help="A short sweep (under 30 s): fewer settings, one run each.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write a PNG of latency and goodput against lowat (needs matplotlib).")
@options.json_output
def lowat(lowats, ccs, sndbufs, writer, nodelay, stamp_every, duration, warmup, repeat, flows,
          message_size, rates, queue_latency, delay, quick, plot_path, as_json) -> None:
    """Sweep TCP_NOTSENT_LOWAT over a shaped path and recommend a value.

    As root, builds three network namespaces (sender, router, receiver)
    with a TBF bottleneck and a base delay on the router, and removes them
    when done (also on Ctrl-C, and leftovers of a killed run).  Without root it runs on
    loopback, with no bottleneck, and says so.  Per setting: application
    latency, time in the send buffer, goodput, unsent/unacked, CPU,
    context switches, send calls, EAGAINs and wakeups per MB.  Linux only.
    """
    if not LINUX:
        raise NotSupported("sockdiag bench lowat runs on Linux only "
                           "(network namespaces, TCP_NOTSENT_LOWAT wakeups, SO_TIMESTAMPING)")
    defaults = _QUICK if quick else _FULL
    duration = defaults["duration"] if duration is None else duration
    warmup = min(defaults["warmup"], duration / 2) if warmup is None else warmup
    if warmup >= duration:
        raise click.BadParameter(f"{warmup:g} s leaves nothing of a {duration:g} s run",
                                 param_hint="'--warmup'")
    if message_size < _MIN_MESSAGE_BYTES:
        raise click.BadParameter(f"at least {_MIN_MESSAGE_BYTES} bytes",
                                 param_hint="'--message-size'")
    if plot_path is not None:
        report.check_plotting()
        # Found out now, not after minutes of sweeping.
        directory = os.path.dirname(os.path.abspath(plot_path))
        if not os.access(directory, os.W_OK):
            raise click.BadParameter(f"cannot write into {directory}", param_hint="'--plot'")
    config = lowat_bench.SweepConfig(
        lowats=tuple(dict.fromkeys(lowats or map(units.parse_lowat, defaults["lowats"]))),
        rates_bps=tuple(dict.fromkeys(rates or [units.parse_rate(_DEFAULT_RATE)])),
        ccs=tuple(dict.fromkeys(ccs or [lowat_bench.default_cc()])),
        sndbufs=tuple(dict.fromkeys(sndbufs or [None])),
        writer=writer, nodelay=nodelay, duration_s=duration, warmup_s=warmup,
        repeat=defaults["repeat"] if repeat is None else repeat,
        flows=flows, message_size=message_size, stamp_every=stamp_every)

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
               f"{config.flows} flow(s), {units.format_size(message_size)} messages, "
               f"writer {writer}{', TCP_NODELAY' if nodelay else ''}; medians of the runs")
    click.echo()
    click.echo(report.table(list(result.results)))
    click.echo()
    for line in report.recommendation_lines(result.recommendations):
        click.echo(line)

