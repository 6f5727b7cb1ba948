"""Every option of the commands, declared once and stacked on them (pip-tools' habit).

``bench lowat`` keeps its own options in cli/bench.py.  Options import only
light modules: `sockdiag watch` starts without top's or export's code.
"""

from __future__ import annotations

import click

from .._common import TCP_STATES, TRAFFIC_SORT_KEYS, parse_size, parse_tcp_state
from .._watch import SORT_KEYS

# --- shared by the live views ------------------------------------------------------

interval = click.option(
    "--interval", "-i", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
    help="Seconds between samples.",
)
count = click.option(
    "--count", "-n", type=click.IntRange(min=1), default=None,
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
    "--port", "-p", "ports", multiple=True, type=click.IntRange(0, 65535),
    help="Only sockets with this local or remote port (repeatable).")


class SizeType(click.ParamType):
    """A byte size option: 500, 64K, 10M, 1.5G (powers of 1024; the one size grammar)."""

    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)


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
    "--cgroup", "cgroup_path", metavar="PATH",
    help="Watch the sockets of a cgroup v2 and the cgroups below it instead of a PID: its "
         "directory or its path as /proc/PID/cgroup shows it (e.g. /system.slice/nginx.service; Linux).")

# --- demo -----------------------------------------------------------------------------

duration = click.option(
    "--duration", "-d", type=click.FloatRange(min=1), default=30.0, show_default=True,
    help="Seconds the workload runs.")

# --- top ------------------------------------------------------------------------------

top_sort = click.option(
    "--sort", "sort_key", type=click.Choice(TRAFFIC_SORT_KEYS), default="total", show_default=True,
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

listen = click.option(
    "--listen", default="127.0.0.1:9977", show_default=True, metavar="HOST:PORT",
    help="Address of /metrics; 0.0.0.0:PORT or [::]:PORT to listen on every address.",
)
pids = click.option(
    "--pid", "pids", type=click.IntRange(min=1), multiple=True,
    help="Watch this process (repeatable); it must exist at start.",
)
process_names = click.option(
    "--process-name", "process_names", multiple=True, metavar="NAME",
    help="Watch every process named NAME, as ps shows it, looked up at each scrape (repeatable; Linux).",
)
per_socket = click.option("--per-socket", is_flag=True, help="Also one series per socket and quantity.")
max_series = click.option(
    "--max-series", type=click.IntRange(min=0), default=1000, show_default=True,
    help="At most this many per-socket series per scrape (sockets holding the most bytes first).",
)
web_config = click.option(
    "--web-config", type=click.Path(dir_okay=False), metavar="FILE",
    help="TLS and basic auth, in the web-config format of the Prometheus exporter toolkit "
         "(node_exporter's --web.config.file): tls_server_config, basic_auth_users.",
)
cgroups = click.option(
    "--cgroup", "cgroups", multiple=True, metavar="PATH",
    help="Watch the sockets of this cgroup v2 and the cgroups below it (repeatable; Linux): "
         "sockdiag_cgroup_* series, a few per cgroup.",
)
