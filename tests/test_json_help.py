"""--json's help promises that each command's help says its shape: every
command that takes --json does, and the shape said is the one printed.

The shape is said in one form, "--json: one object {"a", "b"}" or
"--json: one line per X, each an object {"a", "b", ...}" ("..." when more
keys follow); each command is run with small settings and its output held to it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import click
import pytest

from sockdiag.cli import cli
from testsupport.top_workload import SOCKDIAG

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the commands' samples are Linux's")

SHAPE = re.compile(r'--json[^:]*: (one object|one line per [a-z ]+?, each an object) \{([^}]*)\}')


def commands_with_json(group: click.Group = cli, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    found = {}
    ctx = click.Context(group, info_name="sockdiag")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found.update(commands_with_json(command, (*path, name)))
        elif any(param.name == "as_json" for param in command.params):
            found[(*path, name)] = command
    return found


def said_shape(command: click.Command, name: tuple[str, ...]) -> tuple[str, list[str], bool]:
    """(how many: "one object" or "one line per ...", the keys said, whether more follow)."""
    help_text = " ".join(command.get_help(click.Context(command, info_name=" ".join(name))).split())
    found = SHAPE.search(help_text)
    assert found, f"`sockdiag {' '.join(name)} --help` does not say the shape of its --json"
    keys = re.findall(r'"(\w+)"', found.group(2))
    return found.group(1), keys, "..." in found.group(2)


def recording(tmp_path) -> str:
    path = str(tmp_path / "ifstat.rec")
    subprocess.run([*SOCKDIAG, "ifstat", "-n", "2", "-i", "0.1", "--record", path], check=True,
                   capture_output=True, timeout=60)
    return path


# Each command with --json, run small; (arguments, samples printed: None when not per sample).
RUNS = {
    ("watch",): (lambda tmp: ["watch", str(os.getpid()), "--json", "-n", "2", "-i", "0.1"], 2),
    ("demo",): (lambda tmp: ["demo", "--duration", "1", "-i", "0.5", "--json"], 2),
    ("top",): (lambda tmp: ["top", "--json", "-n", "2", "-i", "0.1"], 2),
    ("ifstat",): (lambda tmp: ["ifstat", "--json", "-n", "2", "-i", "0.1"], 2),
    ("doctor",): (lambda tmp: ["doctor", "--json"], None),
    ("export",): (lambda tmp: ["export", "--once", "--json", "--pid", str(os.getpid())], None),
    ("plot",): (lambda tmp: ["plot", recording(tmp), "-o", str(tmp / "out.png"), "--json"], None),
    ("bench", "lowat"): (lambda tmp: ["bench", "lowat", "--repeat", "1", "--duration", "1", "--warmup", "0",
                                      "--lowat", "16k", "--json"], None),
    ("bench", "rcvbuf"): (lambda tmp: ["bench", "rcvbuf", "--rcvbuf", "64k", "--duration", "0.2", "--json"],
                          None),
}


def test_every_command_with_json_says_its_shape_and_is_run_below():
    commands = commands_with_json()
    assert set(commands) == set(RUNS), "a command with --json must say its shape and be run in RUNS"
    for name, command in commands.items():
        said_shape(command, name)


@pytest.mark.parametrize("name", sorted(RUNS), ids=" ".join)
def test_the_json_printed_is_the_shape_said(name, tmp_path):
    if name == ("plot",):
        pytest.importorskip("matplotlib", reason="sockdiag plot needs the plot extra")
    how_many, keys, more = said_shape(commands_with_json()[name], name)
    args, samples = RUNS[name]
    done = subprocess.run([*SOCKDIAG, *args(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    if how_many == "one object":
        documents = [json.loads(done.stdout)]  # the whole output is one document
    else:
        lines = done.stdout.splitlines()
        documents = [json.loads(line) for line in lines]
        if samples is not None:
            assert len(documents) == samples
    assert documents
    for document in documents:
        assert isinstance(document, dict)
        assert set(keys) <= set(document) if more else set(keys) == set(document), (keys, sorted(document))
