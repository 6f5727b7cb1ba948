"""Shell completion (click's): the scripts docs/install.md tells people to
load, and one completion done by a real bash with the script loaded."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

# The console script pip installed beside this Python: completion goes through it.
SOCKDIAG = pathlib.Path(sys.executable).with_name("sockdiag")

pytestmark = pytest.mark.skipif(not SOCKDIAG.exists(), reason="needs the sockdiag console script")


def completion_script(shell: str) -> str:
    done = subprocess.run([str(SOCKDIAG)], env={**os.environ, "_SOCKDIAG_COMPLETE": f"{shell}_source"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_completion_scripts_and_a_bash_completion():
    for shell in ("zsh", "fish"):
        assert "_SOCKDIAG_COMPLETE" in completion_script(shell), shell
    # bash loads the script and completes as it would at a prompt: a command, then an option.
    session = completion_script("bash") + """
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=();
                   _sockdiag_completion sockdiag; echo "${COMPREPLY[*]}"; }
complete_words sockdiag exp
complete_words sockdiag export --per
"""
    env = {**os.environ, "PATH": f"{SOCKDIAG.parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-c", session], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["export", "--per-socket"]
