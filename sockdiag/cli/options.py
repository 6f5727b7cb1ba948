"""Every option of the commands, declared once and stacked on them (pip-tools' habit).

``bench lowat`` keeps its own options in cli/bench.py.  Options import only
light modules: `sockdiag watch` starts without top's or export's code.
"""

from __future__ import annotations

import click

from .. import _validate
from .._common import TCP_STATES, TRAFFIC_SORT_KEYS, parse_tcp_state
from .._watch import SORT_KEYS


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
    help="One JSON object per sample per line, for programs.",
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
    "--sort", "-s", type=click.Choice(list(SORT_KEYS)), default="unsent", show_default=True,
    help="Column to sort by: quantities largest first, names and fds in order.")
states = click.option(
    "--state", "states", multiple=True, callback=_states, metavar="STATE",
    help="Only sockets in this TCP state (repeatable; e.g. established, listen, close-wait).")
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


# --- demo -----------------------------------------------------------------------------

duration = click.option(
    "--duration", "-d", type=Checked(_validate.RUN_DURATION), default=30.0, show_default=True,
    help="Seconds the workload runs.")

# --- top ------------------------------------------------------------------------------

top_sort = click.option(
    "--sort", "sort_key", type=click.Choice(TRAFFIC_SORT_KEYS), default="total", show_default=True,
    help="Rank processes by this (total = sent + received).")
trace_connects = click.option(
    "--trace-connects/--no-trace-connects", default=None,
    help="Name the process of client connections shorter than a sample with the kernel's "
         "connect tracepoint (default: when root).")

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
    """HOST:PORT or [IPv6]:PORT, checked here; the command takes the text."""

    name = "host:port"

    def convert(self, value, param, ctx):
        try:
            _validate.listen_address(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)
        return value


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
    "--web-config", type=click.Path(dir_okay=False), metavar="FILE",
    help="TLS and basic auth, in the web-config format of the Prometheus exporter toolkit "
         "(node_exporter's --web.config.file): tls_server_config, basic_auth_users.",
)
