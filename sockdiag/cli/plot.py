"""`sockdiag plot FILE -o out.png`: timelines from a recording of watch, top or ifstat."""

from __future__ import annotations

import json

import click

from . import options


@click.command()
@click.argument("recording", type=options.FilePath())
@options.plot_output
@options.plot_connection
@options.since
@options.until
@options.json_output
def plot(recording, output, connection, since, until, as_json):
    """Draw a recording (`watch`, `top` or `ifstat` --record FILE) as timelines in a PNG.

    watch: per connection unsent, unacked, queue delay and RTT, and the
    process's totals (the 8 connections holding the most bytes, or
    --connection); top: each process's rates and totals; ifstat: each
    interface's rates.

    --json: one object {"output", "kind", "samples", "items_drawn", "items"}.
    """
    from ..views import plot as view

    if since is not None and until is not None and until <= since:
        raise click.UsageError("--until must come after --since")
    summary = view.plot(recording, output, connection=connection, since=since, until=until)
    if as_json:
        click.echo(json.dumps({"output": output, **summary.asdict()}))
        return
    click.echo(f"{output}: {summary.samples} samples of `sockdiag {summary.kind}`, "
               f"{summary.items_drawn} of {summary.items} rows drawn")
