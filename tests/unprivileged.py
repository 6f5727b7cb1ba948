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


def unprivileged_python() -> str:
    """A Python of this minor version that nobody may run (the venv's may sit under /root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux)")
    for candidate in (sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"):
        real = os.path.realpath(candidate)
        check = subprocess.run(_setpriv(real, "-c", "pass"), capture_output=True)
        if check.returncode == 0:
            return real
    pytest.skip("no Python of this version that an unprivileged user can run")


def _setpriv(*command: str) -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", *command]


def run_unprivileged(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """python args... as nobody with sockdiag and its dependencies importable."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(sockdiag.__file__)))
    path = os.pathsep.join([package_root, *site.getsitepackages()])
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": path, "HOME": "/tmp", "LC_ALL": "C.UTF-8"}
    return subprocess.run(_setpriv(unprivileged_python(), *args), capture_output=True, text=True,
                          timeout=timeout, env=env, cwd="/tmp", **kwargs)


def unprivileged_popen(*args: str, **kwargs) -> subprocess.Popen:
    """Like run_unprivileged, started in the background."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(sockdiag.__file__)))
    path = os.pathsep.join([package_root, *site.getsitepackages()])
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": path, "HOME": "/tmp", "LC_ALL": "C.UTF-8"}
    return subprocess.Popen(_setpriv(unprivileged_python(), *args), env=env, cwd="/tmp", **kwargs)
