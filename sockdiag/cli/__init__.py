"""The `sockdiag` command: thin click commands over the library.

Every command parses, calls the library and prints.  Errors sockdiag raises
on purpose end the program with one line on stderr and exit status 1; bad
options and arguments with one line and exit status 2.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Iterator, Optional

import click

from .. import __version__
from .._exceptions import SockdiagError


class LazyGroup(click.Group):
    """A group whose commands added by add_lazy_command are imported only when
    looked up (`sockdiag watch` does not pay for importing `top`'s modules;
    `sockdiag --help` imports them all)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, str] = {}

    def add_lazy_command(self, name: str, import_path: str) -> None:
        """Register command name as "module:attribute" (module relative to sockdiag.cli)."""
        self.lazy_commands[name] = import_path

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        if name in self.lazy_commands and name not in self.commands:
            module, attribute = self.lazy_commands[name].split(":")
            self.add_command(getattr(importlib.import_module(module, __name__), attribute), name)
        return super().get_command(ctx, name)

    # A usage error is one line, "Error: ...", without the usage text (which
    # --help shows): bad input gets one line on stderr and exit status 2.
    # The group's invoke parses and runs every command, so this covers them all.

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _one_line_usage_errors():
            return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        with _one_line_usage_errors():
            return super().invoke(ctx)


@contextlib.contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    try:
        yield
    except click.UsageError as err:
        err.ctx = None  # show() then prints only "Error: ..."
        raise


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="sockdiag")
def cli() -> None:
    """Where the bytes are: TCP send buffers, sockets of processes, interfaces."""
    from .._features import assumed_kernel

    try:
        assumed_kernel()  # SOCKDIAG_ASSUME_KERNEL: a bad value is bad input
    except SockdiagError as err:
        raise click.UsageError(str(err)) from None


def main() -> None:
    """The console script: run the command, then end the process without teardown."""
    from .output import CheckedOutput

    try:
        sys.stdout = CheckedOutput(sys.stdout)  # a failed write: one line, a non-zero exit
    except (AttributeError, OSError, ValueError):
        pass  # no standard output at all (closed): nothing will be written to check
    status, result = _run()  # result (watch: its last sample) is never freed
    _exit_now(status)


def _run() -> tuple[int, object]:
    """The exit status of the command line, and what the command returned."""
    try:
        return 0, cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        return 130, None
    except click.ClickException as err:
        err.show()
        return err.exit_code, None
    except click.exceptions.Exit as err:
        return err.exit_code, None
    except KeyboardInterrupt:
        return 130, None
    except BrokenPipeError:
        return 0, None
    except SockdiagError as err:
        click.echo(f"sockdiag: {err}", err=True)
        return 1, None


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


cli.add_lazy_command("watch", ".watch:watch")
cli.add_lazy_command("demo", ".demo:demo")
cli.add_lazy_command("ifstat", ".ifstat:ifstat")
cli.add_lazy_command("top", ".top:top")
cli.add_lazy_command("bench", ".bench:bench")
cli.add_lazy_command("export", ".export:export")
cli.add_lazy_command("plot", ".plot:plot")
cli.add_lazy_command("doctor", ".doctor:doctor")
