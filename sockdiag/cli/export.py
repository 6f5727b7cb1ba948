"""`sockdiag export`: serve Prometheus metrics of watched processes and interfaces."""

from __future__ import annotations

import click

from .._common import SockdiagError
from . import options


@click.command()
@click.option(
    "--listen", default="127.0.0.1:9977", show_default=True, metavar="HOST:PORT",
    help="Address of /metrics; 0.0.0.0:PORT or [::]:PORT to listen on every address.",
)
@click.option(
    "--pid", "pids", type=click.IntRange(min=1), multiple=True,
    help="Watch this process (repeatable); it must exist at start.",
)
@click.option(
    "--process-name", "process_names", multiple=True, metavar="NAME",
    help="Watch every process named NAME, as ps shows it, looked up at each scrape (repeatable; Linux).",
)
@click.option("--per-socket", is_flag=True, help="Also one series per socket and quantity.")
@click.option(
    "--max-series", type=click.IntRange(min=0), default=1000, show_default=True,
    help="At most this many per-socket series per scrape (sockets holding the most bytes first).",
)
@click.option(
    "--web-config", type=click.Path(dir_okay=False), metavar="FILE",
    help="TLS and basic auth, in the web-config format of the Prometheus exporter toolkit "
         "(node_exporter's --web.config.file): tls_server_config, basic_auth_users.",
)
@options.once
def export(listen, pids, process_names, per_socket, max_series, web_config, once):
    """Serve Prometheus metrics on /metrics, read fresh at each scrape.

    Interface counters always; per watched process the sockets by state, the
    sums of unacked, unsent and free bytes and a histogram of queue delay.
    --once prints one scrape instead (for node_exporter's textfile collector).
    """
    try:
        from .. import export as exporter
    except ImportError as err:
        raise SockdiagError(str(err)) from err
    host, port = exporter.parse_listen(listen)
    collector = exporter.Collector(pids, process_names, per_socket=per_socket, max_series=max_series)
    if once:
        click.echo(exporter.exposition(collector).decode(), nl=False)
        return
    from ..web import is_loopback, load_web_config

    web = load_web_config(web_config) if web_config else None
    if web is None and not is_loopback(host):
        click.echo(f"sockdiag: warning: serving {listen} beyond loopback without --web-config: "
                   "process names (and with --per-socket every peer address) go out without "
                   "TLS or authentication", err=True)
    server, thread = exporter.serve(collector, host, port, web)
    host, port = server.server_address[:2]
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    scheme = "https" if web is not None and web.tls is not None else "http"
    click.echo(f"sockdiag: serving {scheme}://{shown}/metrics", err=True)
    thread.join()
