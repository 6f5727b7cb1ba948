"""`sockdiag export`: serve Prometheus metrics of watched processes and interfaces."""

from __future__ import annotations

import json

import click

from .._common import endpoint
from .._exceptions import SockdiagError
from . import options


@click.command()
@options.listen
@options.pids
@options.process_names
@options.cgroups
@options.per_socket
@options.max_series
@options.web_config
@options.once
@options.json_output
def export(listen, pids, process_names, cgroups, per_socket, max_series, web_config, once, as_json):
    """Serve Prometheus metrics on /metrics, read fresh at each scrape.

    Interface counters always; per watched process the sockets by state, the
    sums of unacked, unsent and free bytes and a histogram of queue delay;
    the same per watched --cgroup.
    --once prints one scrape instead (for node_exporter's textfile collector).

    --json (with --once): one line per series, each an object {"name",
    "labels", "value"}.
    """
    try:
        from .. import export as exporter, exposition
    except ImportError as err:
        raise SockdiagError(str(err)) from err
    host, port = listen
    collector = exporter.Collector(pids, process_names, per_socket=per_socket, max_series=max_series,
                                   cgroups=cgroups)
    from ..web import is_loopback, load_web_config, serve

    # Read even with --once: a file named but missing is a mistake either way.
    web = load_web_config(web_config) if web_config else None
    if as_json and not once:
        raise click.UsageError("--json prints one scrape: use it with --once")
    if once:
        if as_json:
            click.echo("".join(json.dumps({"name": s.name, "labels": s.labels, "value": s.value}) + "\n"
                               for family in exporter.registry(collector).collect()
                               for s in family.samples), nl=False)
        else:
            click.echo(exposition.scrape(collector).decode(), nl=False)
        return
    for warning in web.warnings if web is not None else ():
        click.echo(f"sockdiag: warning: {warning}", err=True)
    if web is None and not is_loopback(host):
        click.echo(f"sockdiag: warning: serving {endpoint(host, port)} beyond loopback without --web-config: "
                   "process names (and with --per-socket every peer address) go out without "
                   "TLS or authentication", err=True)
    server, thread = serve(collector, host, port, web)
    host, port = server.server_address[:2]
    scheme = "https" if web is not None and web.tls is not None else "http"
    click.echo(f"sockdiag: serving {scheme}://{endpoint(host, port)}/metrics", err=True)
    thread.join()
