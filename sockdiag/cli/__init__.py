"""The `sockdiag` command: thin click commands over the library.

Every command parses, calls the library and prints.  Errors sockdiag raises
on purpose end the program with one line on stderr and exit status 1.
"""

from __future__ import annotations

import sys

import click

from .._common import SockdiagError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sockdiag")
def cli() -> None:
    """Where the bytes are: TCP send buffers, sockets of processes, interfaces."""


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except SockdiagError as err:
        click.echo(f"sockdiag: {err}", err=True)
        sys.exit(1)


from .watch import watch  # noqa: E402
cli.add_command(watch)
from .demo import demo  # noqa: E402
cli.add_command(demo)
from .ifstat import ifstat  # noqa: E402
cli.add_command(ifstat)
from .top import top  # noqa: E402
cli.add_command(top)
from .bench import bench  # noqa: E402
cli.add_command(bench)
from .export import export  # noqa: E402
cli.add_command(export)
