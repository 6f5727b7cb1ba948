"""Every option of the commands, declared once and stacked on them (pip-tools' habit).

``bench lowat`` keeps its own options in cli/bench.py.  Options import only
light modules: `sockdiag watch` starts without top's or export's code.
"""

from __future__ import annotations

import click

from .. import _validate
from .._common import SOCKET_KINDS, TCP_STATES, kind_mask, parse_tcp_state
from ..fields import SOCKET_SORTS, TRAFFIC_SORTS


class Checked(click.ParamType):
    """A number option or argument checked against one of sockdiag._validate's
    ranges: the API's checks, refused in one line naming the option (exit 2)."""

    def __init__(self, valid) -> None:
        self.valid = valid
        self.name = valid.kind

    def convert(self, value, param, ctx):
        try:
            return self.valid.parse(value)
        except (TypeError, ValueError) as err:
            self.fail(str(err), param, ctx)


PID = Checked(_validate.PID)


class FilePath(click.Path):
    """A file's path (click.Path, no directory); empty is refused: it names no file."""

    def __init__(self, **kwargs) -> None:
        super().__init__(dir_okay=False, **kwargs)

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path names no file", param, ctx)
        return super().convert(value, param, ctx)


def _cgroup_paths(ctx, param, value):
    """--cgroup values, none empty: "" would name the root cgroup, the whole machine."""
    for path in (value,) if isinstance(value, str) else value or ():
        if not path.strip():
            raise click.BadParameter('an empty path names no cgroup ("/" is the root cgroup: the whole machine)')
    return value

# --- shared by the live views ------------------------------------------------------

interval = click.option(
    "--interval", "-i", type=Checked(_validate.VIEW_INTERVAL), default=1.0, show_default=True,
    help="Seconds between samples.",
)
count = click.option(
    "--count", "-n", type=Checked(_validate.COUNT), default=None,
    help="Stop after this many samples.",
)
once = click.option("--once", is_flag=True, help="Print one sample and exit.")
json_output = click.option(
    "--json", "as_json", is_flag=True,
    help="JSON for programs instead of text for people (each command's help says its shape).",
)

# --- watch ----------------------------------------------------------------------------


def _states(ctx, param, values):
    """--state values as TCP state names ("established", "close-wait" accepted)."""
    names = []
    for value in values:
        try:
            names.append(parse_tcp_state(value))
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not a TCP state (one of {', '.join(TCP_STATES[1:]).lower()})") from None
    return names or None


watch_sort = click.option(
    "--sort", "-s", type=click.Choice(SOCKET_SORTS), default="unsent", show_default=True,
    help="Column to sort by: quantities largest first, names and fds in order.")
states = click.option(
    "--state", "states", multiple=True, callback=_states, metavar="STATE",
    help="Only sockets in this TCP state (repeatable; e.g. established, listen, close-wait).")
def _kinds(ctx, param, value):
    try:
        kind_mask(value.split(","))
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    return tuple(dict.fromkeys(kind.strip().lower() for kind in value.split(",")))


kinds = click.option(
    "--kind", "kinds", default=",".join(SOCKET_KINDS), show_default=True, callback=_kinds,
    metavar="KINDS", help="The kinds of socket to show, comma-separated: tcp, udp, unix.")
ports = click.option(
    "--port", "-p", "ports", multiple=True, type=Checked(_validate.PORT),
    help="Only sockets with this local or remote port (repeatable).")


class SizeType(Checked):
    """A byte size option: 500, 64K, 10M, 1.5G (powers of 1024; the one size grammar)."""

    def __init__(self, valid: _validate.Sizes = _validate.BYTES) -> None:
        super().__init__(valid)


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


def budgets(command):
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


watch_cgroup = click.option(
    "--cgroup", "cgroup_path", metavar="PATH", callback=_cgroup_paths,
    help="Watch the sockets of a cgroup v2 and the cgroups below it instead of a PID: its "
         "directory or its path as /proc/PID/cgroup shows it (e.g. /system.slice/nginx.service; Linux).")

# --- demo -----------------------------------------------------------------------------

duration = click.option(
    "--duration", "-d", type=Checked(_validate.RUN_DURATION), default=30.0, show_default=True,
    help="Seconds the workload runs.")

# --- top ------------------------------------------------------------------------------

top_sort = click.option(
    "--sort", "-s", "sort_key", type=click.Choice(TRAFFIC_SORTS), default="total", show_default=True,
    help="Rank processes by this (total = sent + received).")
trace_connects = click.option(
    "--trace-connects/--no-trace-connects", default=None,
    help="Name the process of client connections shorter than a sample with the kernel's "
         "connect tracepoint (default: when root).")

top_by = click.option(
    "--by", "group_by", type=click.Choice(["process", "cgroup"]), default="process", show_default=True,
    help="One row per process, or per cgroup v2 (a systemd unit, a container, a pod; Linux).")

# --- ifstat ---------------------------------------------------------------------------


def _interface_names(ctx, param, values) -> frozenset[str]:
    """Names from repeated and comma-separated --interfaces values."""
    return frozenset(name.strip() for value in values for name in value.split(",") if name.strip())


interface_filter = click.option(
    "--interfaces", "-I", "wanted", multiple=True, callback=_interface_names, metavar="NAME[,NAME...]",
    help="Only these interfaces (repeat the option or separate names with commas).",
)

# --- export ---------------------------------------------------------------------------


class ListenAddress(click.ParamType):
    """HOST:PORT or [IPv6]:PORT, as (host, port): the one parse of the address.

    The host must be given: "0.0.0.0:9977" or "[::]:9977" to listen on every
    address, "127.0.0.1:9977" for this machine only.
    """

    name = "host:port"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            return _validate.listen_address(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)


listen = click.option(
    "--listen", type=ListenAddress(), default="127.0.0.1:9977", show_default=True, metavar="HOST:PORT",
    help="Address of /metrics; 0.0.0.0:PORT or [::]:PORT to listen on every address.",
)
pids = click.option(
    "--pid", "pids", type=PID, multiple=True,
    help="Watch this process (repeatable); it must exist at start.",
)
process_names = click.option(
    "--process-name", "process_names", multiple=True, metavar="NAME",
    help="Watch every process named NAME, as ps shows it, looked up at each scrape (repeatable; Linux).",
)
per_socket = click.option("--per-socket", is_flag=True, help="Also one series per socket and quantity.")
max_series = click.option(
    "--max-series", type=Checked(_validate.LIMIT), default=1000, show_default=True,
    help="At most this many per-socket series per scrape (sockets holding the most bytes first).",
)
web_config = click.option(
    "--web-config", type=FilePath(), metavar="FILE",
    help="TLS and basic auth, in the web-config format of the Prometheus exporter toolkit "
         "(node_exporter's --web.config.file): tls_server_config, basic_auth_users.",
)
cgroups = click.option(
    "--cgroup", "cgroups", multiple=True, metavar="PATH", callback=_cgroup_paths,
    help="Watch the sockets of this cgroup v2 and the cgroups below it (repeatable; Linux): "
         "sockdiag_cgroup_* series, a few per cgroup.",
)


# --- bench lowat -----------------------------------------------------------------------

# The sweep's presets: --quick trades repeats and length for a sweep under 30 s.
LOWAT_FULL_SWEEP = {"lowats": ("off", "128k", "16k", "4k"), "duration": 6.0, "warmup": 2.0,
                    "repeat": 5}
LOWAT_QUICK_SWEEP = {"lowats": ("off", "128k", "16k"), "duration": 4.0, "warmup": 1.5,
                     "repeat": 1}
LOWAT_DEFAULT_RATE = "10mbit"


class _BenchValue(click.ParamType):
    """A click type over one of sockdiag.lowat.units' strict parsers, by name
    (imported on use: the other commands do not pay for the benchmark)."""

    def __init__(self, name: str, parser: str) -> None:
        self.name = name
        self.parser = parser

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        from ..lowat import units

        try:
            return getattr(units, self.parser)(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)


class _CongestionControl(click.ParamType):
    name = "cc"

    def convert(self, value, param, ctx):
        from .. import lowat

        available = lowat.available_ccs()
        if value not in available:
            self.fail(f"{value!r} is not offered by this kernel (available: {' '.join(available)})",
                      param, ctx)
        return value


_DURATION = _BenchValue("duration", "parse_duration_us")


def lowat_options(command):
    """Every option of `bench lowat`, stacked on it."""
    for option in reversed([
        click.option("--lowat", "lowats", type=_BenchValue("lowat", "parse_lowat"), multiple=True,
                     help="TCP_NOTSENT_LOWAT to try: off, a size (1m, 128k, 16k, 4k, 1) or a time "
                          "target (20ms: sockdiag.LowatTuner keeps it at delivery rate x 20 ms); "
                          f"repeatable. [default: {' '.join(LOWAT_FULL_SWEEP['lowats'])}; "
                          f"{' '.join(LOWAT_QUICK_SWEEP['lowats'])} with --quick]"),
        click.option("--cc", "ccs", type=_CongestionControl(), multiple=True,
                     help="Congestion control (one the kernel offers); repeatable. "
                          "[default: bbr, else the system default]"),
        click.option("--sndbuf", "sndbufs", type=_BenchValue("sndbuf", "parse_sndbuf"),
                     multiple=True,
                     help="Send buffer: auto (kernel auto-tuning) or a size for SO_SNDBUF; "
                          "repeatable. [default: auto]"),
        click.option("--writer", type=click.Choice(["eagain", "epollout"]), default="eagain",
                     show_default=True,
                     help="eagain: on each wakeup write until the kernel refuses; "
                          "epollout: one message per EPOLLOUT wakeup."),
        click.option("--nodelay", is_flag=True,
                     help="Set TCP_NODELAY on the sender: without it, Nagle holds writes smaller "
                          "than the MSS while one is unacknowledged (a small lowat on loopback "
                          "hits this)."),
        click.option("--eor/--no-eor", default=True, show_default=True,
                     help="Send each message with MSG_EOR, so that no later write joins its "
                          "skb: the limit is overshot by one message at most.  --no-eor lets "
                          "the kernel append writes to the last unsent skb unchecked, up to "
                          "64 KiB past the limit, as for an application without MSG_EOR."),
        click.option("--stamp-every", type=Checked(_validate.COUNT), default=8, show_default=True,
                     help="One write in this many asks for SO_TIMESTAMPING stamps (and "
                          "carries MSG_EOR, which the stamp needs, even with --no-eor)."),
        click.option("--duration", type=Checked(_validate.RUN_DURATION), default=None,
                     help=f"Seconds per run. [default: {LOWAT_FULL_SWEEP['duration']:g}; "
                          f"{LOWAT_QUICK_SWEEP['duration']:g} with --quick]"),
        click.option("--warmup", type=Checked(_validate.PART_OF_RUN), default=None,
                     help="Seconds at the start of each run that are not measured. "
                          f"[default: {LOWAT_FULL_SWEEP['warmup']:g}; "
                          f"{LOWAT_QUICK_SWEEP['warmup']:g} with --quick]"),
        click.option("--repeat", type=Checked(_validate.Integers(1, 100)), default=None,
                     help="Runs per setting; the table shows medians. "
                          f"[default: {LOWAT_FULL_SWEEP['repeat']}; "
                          f"{LOWAT_QUICK_SWEEP['repeat']} with --quick]"),
        click.option("--flows", type=Checked(_validate.Integers(1, 256)), default=1,
                     show_default=True,
                     help="Parallel connections per run (socket memory grows with them)."),
        click.option("--message-size", type=SizeType(_validate.BENCH_MESSAGE_SIZE), default="4k",
                     show_default=True, help="Bytes per application message."),
        click.option("--rate", "rates", type=_BenchValue("rate", "parse_rate"), multiple=True,
                     help="Bottleneck rate (TBF on the router), in tc's notation; repeatable to "
                          f"sweep rates. [default: {LOWAT_DEFAULT_RATE}]"),
        click.option("--queue-latency", type=_BenchValue("duration", "parse_queue_latency_us"), default="50ms",
                     show_default=True,
                     help="TBF queue limit, as time at the bottleneck rate."),
        click.option("--delay", type=_DURATION, default="20ms", show_default=True,
                     help="Base delay on the ACK path (0 for none): netem, or where the kernel "
                          "has no netem a user-space delay line (a TUN device on the router), "
                          "which refuses rates above its packet-rate ceiling."),
        click.option("--quick", is_flag=True,
                     help="A short sweep (under 30 s): fewer settings, one run each."),
        click.option("--plot", "plot_path", type=FilePath(writable=True),
                     default=None,
                     help="Also write a PNG of latency and goodput against lowat (needs "
                          "matplotlib)."),
    ]):
        command = option(command)
    return command


# --- bench rcvbuf ----------------------------------------------------------------------

# --quick: four sizes of a second each, a few seconds in all.
RCVBUF_FULL_SWEEP = {"rcvbufs": ("64k", "208k", "512k", "1m", "2m", "4m", "7500000"),
                     "duration": 3.0}
RCVBUF_QUICK_SWEEP = {"rcvbufs": ("64k", "208k", "1m", "7500000"), "duration": 1.0}


def rcvbuf_options(command):
    """Every option of `bench rcvbuf`, stacked on it."""
    for option in reversed([
        click.option("--rcvbuf", "rcvbufs", type=SizeType(_validate.BENCH_RCVBUF), multiple=True,
                     help="SO_RCVBUF size to request (the kernel grants twice it, capped by "
                          "net.core.rmem_max); repeatable. "
                          f"[default: {' '.join(RCVBUF_FULL_SWEEP['rcvbufs'])}; "
                          f"{' '.join(RCVBUF_QUICK_SWEEP['rcvbufs'])} with --quick]"),
        click.option("--rate", type=_BenchValue("rate", "parse_rate"), default="50mbit",
                     show_default=True, help="Average rate of UDP payload, in tc's notation."),
        click.option("--datagram-size", type=SizeType(_validate.BENCH_DATAGRAM_SIZE),
                     default="1200", show_default=True,
                     help="Bytes of payload per datagram (QUIC sends 1200 to 1500)."),
        click.option("--burst", type=Checked(_validate.BENCH_BURST), default=256,
                     show_default=True, help="Datagrams the sender sends back to back."),
        click.option("--service", type=_DURATION, default="50us", show_default=True,
                     help="The receiver's time per datagram, its read included."),
        click.option("--duration", type=Checked(_validate.BENCH_RCVBUF_DURATION), default=None,
                     help=f"Seconds of bursts per size. [default: {RCVBUF_FULL_SWEEP['duration']:g}; "
                          f"{RCVBUF_QUICK_SWEEP['duration']:g} with --quick]"),
        click.option("--force", is_flag=True,
                     help="Request with SO_RCVBUFFORCE (root), which net.core.rmem_max does not "
                          "cap; without the privilege, a notice and SO_RCVBUF."),
        click.option("--quick", is_flag=True, help="A short sweep (a few seconds): four sizes."),
        click.option("--plot", "plot_path", type=FilePath(writable=True), default=None,
                     help="Also write a PNG of drops and time in the queue against the size "
                          "(needs matplotlib)."),
    ]):
        command = option(command)
    return command


# --- recordings (watch, top, ifstat) ---------------------------------------------------

record_to = click.option(
    "--record", "record_to", type=FilePath(), metavar="FILE",
    help="Also write every sample to FILE as JSON lines, after the first only what changed "
         "(zstd-compressed when FILE ends in .zst; needs: pip install 'sockdiag[record]').")
max_size = click.option(
    "--max-size", type=SizeType(), default=None, metavar="SIZE",
    help="Stop recording before FILE passes SIZE bytes (e.g. 100M); the view goes on.")
force = click.option(
    "--force", is_flag=True,
    help="Let --record FILE replace a file that holds a sockdiag recording (never one being recorded).")
replay = click.option(
    "--replay", type=FilePath(), metavar="FILE",
    help="Play a recording (--record) back in the live view, with the same keys, instead of sampling.")


def recording(command):
    """--record, --max-size and --force, stacked on a command (--max-size or --force alone is a usage error)."""
    import functools

    @functools.wraps(command)
    def checked(*args, **kwargs):
        if kwargs.get("max_size") is not None and kwargs.get("record_to") is None:
            raise click.UsageError("--max-size bounds a --record FILE")
        if kwargs.get("force") and kwargs.get("record_to") is None:
            raise click.UsageError("--force lets a --record FILE replace a recording")
        return command(*args, **kwargs)

    return record_to(max_size(force(checked)))

# --- plot -----------------------------------------------------------------------------

plot_output = click.option(
    "--output", "-o", required=True, type=FilePath(), metavar="PNG",
    help="Where to write the picture (PNG).")
plot_connection = click.option(
    "--connection", "-c", metavar="ITEM",
    help="Only this connection (watch: an fd, an inode, or a local or remote ADDRESS:PORT), "
         "process (top: a pid or name) or interface (ifstat).")
_RECORDING_OFFSET = _validate.Reals(0.0, 3660 * _validate.DAY_S)
since = click.option(
    "--since", type=Checked(_RECORDING_OFFSET), default=None, metavar="SECONDS",
    help="Start this many seconds after the recording's first sample.")
until = click.option(
    "--until", type=Checked(_RECORDING_OFFSET), default=None, metavar="SECONDS",
    help="End this many seconds after the recording's first sample.")
