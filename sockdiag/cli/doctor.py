"""`sockdiag doctor`: what sockdiag can see on this machine, and why not."""

from __future__ import annotations

import json

import click

from . import options


@click.command()
@options.json_output
def doctor(as_json: bool) -> None:
    """The kernel, each kernel feature sockdiag uses (name, since, available
    here, what each command does without it), the privileges that decide
    what can be read (root, capabilities, tracefs, cgroups, Yama) and what
    each command will and will not show here.  Needs no privilege.

    SOCKDIAG_ASSUME_KERNEL=X.Y shows what a kernel X.Y would get.

    --json: one object {"kernel", "assumed_kernel", "features", "privileges",
    "commands"}.
    """
    from .. import doctor as library
    from ..views import doctor as view

    report = library.diagnose()
    if as_json:
        click.echo(json.dumps(report.asdict()))
    else:
        click.echo("\n".join(view.lines(report)))
