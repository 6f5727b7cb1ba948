"""Run Python code as an unprivileged user (nobody, no capabilities), for tests run as root."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys

import pytest

import sockdiag

NOBODY = 65534


def _environment() -> dict[str, str]:
    """sockdiag (this checkout) and its dependencies importable, nothing else inherited."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(sockdiag.__file__)))
    path = os.pathsep.join([package_root, *site.getsitepackages()])
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": path, "HOME": "/tmp", "LC_ALL": "C.UTF-8"}


def _setpriv(*command: str) -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", *command]


def unprivileged_python() -> str:
    """A Python of this version with which nobody can import this sockdiag
    (the venv's interpreter, or the checkout, may sit where nobody cannot read)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux)")
    for candidate in (sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"):
        real = os.path.realpath(candidate)
        check = subprocess.run(_setpriv(real, "-c", "import click, tabulate, sockdiag._fast"),
                               capture_output=True, env=_environment(), cwd="/tmp")
        if check.returncode == 0:
            return real
    pytest.skip("nobody cannot run this Python or read this checkout and its venv")


def run_unprivileged(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """python args... as nobody, without capabilities, with sockdiag importable."""
    return subprocess.run(_setpriv(unprivileged_python(), *args), capture_output=True, text=True,
                          timeout=timeout, env=_environment(), cwd="/tmp")
