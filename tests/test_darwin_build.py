"""The extension's generated C compiled as macOS would see it, here on Linux.

macOS cannot run here, so this is the next best check that the one generated
C file still compiles there: __APPLE__ instead of __linux__, the Linux-only
socket names removed, and libproc/sysctl declared as the SDK declares them.
A Linux-only call or constant used outside a stub fails this test.  The real
SDK check runs in the macOS CI job (.github/workflows/ci.yml).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig

import pytest

import sockdiag
from sockdiag import decode
from sockdiag._common import LINUX

GENERATED_C = pathlib.Path(sockdiag.__file__).parent / "_fast.c"

# Included before anything else: the system headers' guards make later
# includes no-ops, so the names undefined here stay undefined.
MACOS_VIEW = """
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#undef SO_DOMAIN
#undef SO_PROTOCOL
#undef SO_MEMINFO
#undef SO_PEEK_OFF
#undef SIOCINQ
#undef SIOCOUTQ
#undef SIOCOUTQNSD
#undef SOL_TCP
#undef TCP_INFO
#undef TCP_CONGESTION
#undef AF_NETLINK
#undef PF_NETLINK
#undef SOCK_CLOEXEC
"""
LIBPROC_H = """
#include <stdint.h>
int proc_pidinfo(int pid, int flavor, uint64_t arg, void *buffer, int buffersize);
int proc_pidfdinfo(int pid, int fd, int flavor, void *buffer, int buffersize);
"""
SYSCTL_H = """
#include <stddef.h>
int sysctl(int *name, unsigned int namelen, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
"""


@pytest.mark.skipif(not LINUX, reason="simulates macOS on Linux; on macOS the real build is the check")
@pytest.mark.skipif(not GENERATED_C.exists(), reason="needs the generated _fast.c (an in-place build)")
@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_generated_c_compiles_as_macos(tmp_path):
    pyconfig = pathlib.Path(sysconfig.get_paths()["include"]) / "pyconfig.h"
    if "multiarch" in pyconfig.read_text(errors="replace"):
        pytest.skip("this Python's pyconfig.h picks its real header by the Linux target "
                    "(Debian's multiarch wrapper): it cannot be read as macOS")
    (tmp_path / "sys").mkdir()
    (tmp_path / "libproc.h").write_text(LIBPROC_H)
    (tmp_path / "sys" / "sysctl.h").write_text(SYSCTL_H)
    (tmp_path / "macos_view.h").write_text(MACOS_VIEW)
    result = subprocess.run(
        ["cc", "-fsyntax-only", "-U__linux__", "-D__APPLE__",
         "-Werror=implicit-function-declaration",
         "-include", str(tmp_path / "macos_view.h"), f"-I{tmp_path}",
         f"-I{sysconfig.get_paths()['include']}", f"-I{GENERATED_C.parent}", str(GENERATED_C)],
        capture_output=True, text=True, timeout=120,
    )
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert result.returncode == 0, "\n".join(errors[:20]) or result.stderr[-2000:]


# --- the layout audit (.github/macos/audit.py) -------------------------------------

AUDIT = pathlib.Path(__file__).resolve().parents[1] / ".github" / "macos" / "audit.py"


def _audit_module():
    spec = importlib.util.spec_from_file_location("macos_audit", AUDIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_audit_covers_every_number_of_the_c_headers():
    # A new SD_* number in includes/darwin.h without an Apple name stops the audit.
    audit = _audit_module()
    names = {check.expected for check in audit.header_checks()}
    assert {"SD_TCPI_SND_SBBYTES_OFFSET", "SD_TCPI_TXUNACKED_OFFSET", "SD_TCP_INFO_OPT",
            "SD_SOCKET_FDINFO_SIZE", "SD_NET_RT_IFLIST2"} <= names
    source, asserts, skipped = audit.program(None, None, {"TCPS_LISTEN"})
    # Without a private header, everything about struct tcp_info is skipped, not asserted.
    assert "struct tcp_info" not in source.split('#include "darwin.h"')[1]
    assert asserts + len(skipped) == len(decode.DARWIN_ABI) + len(audit.header_checks())
    assert "_Static_assert((TCPS_LISTEN) == (SD_TCPS_LISTEN)" in source


SDK = os.environ.get("SOCKDIAG_MACOS_SDK")


@pytest.mark.skipif(not SDK, reason="set SOCKDIAG_MACOS_SDK to a macOS SDK root (docs/macos.md)")
@pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang")
def test_audit_against_an_sdk():
    headers = os.environ.get("SOCKDIAG_XNU_TCP_PRIVATE_H", "")
    command = [sys.executable, str(AUDIT), "--sdk", SDK]
    command += [arg for header in headers.split(os.pathsep) if header for arg in ("--private-header", header)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" ok ") >= 2  # both architectures


@pytest.mark.skipif(not SDK, reason="set SOCKDIAG_MACOS_SDK to a macOS SDK root (docs/macos.md)")
@pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang")
@pytest.mark.skipif(not GENERATED_C.exists(), reason="needs the generated _fast.c (an in-place build)")
@pytest.mark.parametrize("target", ["arm64-apple-macos12", "x86_64-apple-macos12"])
def test_generated_c_compiles_against_the_sdk(target):
    # The SDK's own headers this time; only Python's headers are this machine's.
    result = subprocess.run(
        ["clang", "-target", target, "-isysroot", SDK, "-fsyntax-only", "-Wall", "-Werror",
         f"-I{sysconfig.get_paths()['include']}", f"-I{GENERATED_C.parent}", str(GENERATED_C)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
