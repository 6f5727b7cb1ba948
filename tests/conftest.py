"""Fixtures shared by the tests: real loopback TCP connections, root checks."""

from __future__ import annotations

import os
import shutil
import socket
import sys

import pytest

from loopback import connected_pair, drain, fill, wait_until  # noqa: F401 (re-exported)

IS_ROOT = os.geteuid() == 0

requires_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="checks against Linux's own views (ioctls, ss, /proc); macOS has its own tests",
)
requires_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (run the tests as root, as CI does)")
requires_ss = pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss from iproute2")


@pytest.fixture(params=[socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
def family(request):
    return request.param


@pytest.fixture
def tcp_pair(family):
    client, server = connected_pair(family)
    yield client, server
    client.close()
    server.close()
