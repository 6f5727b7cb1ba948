"""Fixtures shared by the tests: real loopback TCP connections, root checks."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys

import pytest

from testsupport.loopback import connected_pair, drain, fill, wait_until  # noqa: F401 (re-exported)

CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21


def _root_with_admin_capabilities() -> bool:
    """Root that may make namespaces and veths (a container's root may not)."""
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/self/status") as status:
            caps = next(int(line.split()[1], 16) for line in status if line.startswith("CapEff:"))
    except (OSError, StopIteration):
        return True  # no /proc (macOS): root is root
    return all(caps >> bit & 1 for bit in (CAP_NET_ADMIN, CAP_SYS_ADMIN))


IS_ROOT = _root_with_admin_capabilities()

requires_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="checks against Linux's own views (ioctls, ss, /proc); macOS has its own tests",
)
requires_root = pytest.mark.skipif(
    not IS_ROOT, reason="needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN (run the tests as root, as CI does)")
requires_ss = pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss from iproute2")


@contextlib.contextmanager
def mounted_tmpfs(tmp_path, size: str):
    """A tmpfs of size (mount's "12k") mounted below tmp_path, unmounted afterwards; skips without root."""
    if not IS_ROOT:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / f"tmpfs-{size}"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)  # lazy: a killed child may still hold a file


@pytest.fixture(params=[socket.AF_INET, socket.AF_INET6], ids=["ipv4", "ipv6"])
def family(request):
    return request.param


@pytest.fixture
def tcp_pair(family):
    client, server = connected_pair(family)
    yield client, server
    client.close()
    server.close()


# The kernel-facing tests: what CI runs again under other kernels
# (tools/kernel-lane.sh, `pytest -m kernel`), by file, less the tests that
# read no kernel (the decoders' property tests), and, named here, those that
# cost an emulated CPU most (38 s and more each) on what the host run
# already checks.
KERNEL_FACING_FILES = frozenset({
    "test_send_buffer.py", "test_tcp_info.py", "test_process_sockets.py", "test_interfaces.py",
    "test_cgroup.py", "test_events.py", "test_kernel_features.py",
})
NOT_IN_THE_KERNEL_LANE = frozenset({
    "test_counter_beyond_4_gib_does_not_wrap", "test_bad_cgroup_input_is_one_line_and_exit_1",
    "test_doctor_as_nobody_reports_what_it_cannot_see",
})


def pytest_collection_modifyitems(items):
    for item in items:
        if (item.path.name in KERNEL_FACING_FILES and item.originalname not in NOT_IN_THE_KERNEL_LANE
                and not getattr(getattr(item, "obj", None), "is_hypothesis_test", False)):
            item.add_marker(pytest.mark.kernel)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """(certificate, key) of a self-signed certificate for 127.0.0.1, made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key
