"""The `sockdiag` command: thin click commands over the library.

Every command parses, calls the library and prints.  Errors sockdiag raises
on purpose end the program with one line on stderr and exit status 1.
"""

from __future__ import annotations

import os
import sys

import click

from .._common import SockdiagError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sockdiag")
def cli() -> None:
    """Where the bytes are: TCP send buffers, sockets of processes, interfaces."""


def main() -> None:
    """The console script: run the command, then end the process without teardown."""
    _exit_now(_run())


def _run() -> int:
    """The exit status of the command line."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        return 130
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except SockdiagError as err:
        click.echo(f"sockdiag: {err}", err=True)
        return 1
    return 0


def _exit_now(status: int) -> None:
    """Flush the output and end the process with status, skipping interpreter teardown.

    Tearing down would free every object one by one (a sample of 19,000
    sockets takes 15 ms) just before the kernel frees it all at once.  The
    commands leave nothing behind that needs a finalizer: files, children and
    terminal state are closed by their own try/finally blocks before this.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            pass  # the reader left (`| head`): not an error, as above
        except OSError:
            status = status or 1
    os._exit(status)


from .watch import watch  # noqa: E402
cli.add_command(watch)
from .demo import demo  # noqa: E402
cli.add_command(demo)
from .ifstat import ifstat  # noqa: E402
cli.add_command(ifstat)
from .top import top  # noqa: E402
cli.add_command(top)
