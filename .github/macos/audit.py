"""Check every macOS offset, size and constant sockdiag hard-codes against Apple's headers.

Compiles, with ``clang -target`` for arm64 and x86_64, one C file of
``_Static_assert``s against an SDK: each check of sockdiag.decode.DARWIN_ABI
(what the Python decoders read) and each ``SD_*`` number of
sockdiag/includes/darwin.h and the macOS branch of compat.h (what the C code
reads), the headers included as the extension includes them.  Nothing runs,
so any machine with clang and a copy of the SDK's usr/include can do it.

The private ``struct tcp_info`` and ``TCP_INFO`` are not in the SDK: pass
XNU's ``bsd/netinet/tcp_private.h`` (xnu-8792 and later, macOS 13+; it needs
an SDK at least that new) or, for older kernels, their ``bsd/netinet/tcp.h``
with --private-header, once per kernel version.  From an old tcp.h only
``struct tcp_info`` is compiled, cut out with the ``#pragma pack(4)`` it sits
under (the rest of that header's private part needs XNU's other private
headers).  A member an older kernel's struct lacks is skipped and counted.

    python .github/macos/audit.py --sdk "$(xcrun --show-sdk-path)" \
        [--private-header xnu-11417/tcp_private.h ...]

Run from the repository root with sockdiag importable.  Exit status 1 when
an assertion fails or a header constant has no check.  Apple's headers are
never copied into the repository: point at them where they are.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
from typing import NamedTuple, Optional

from sockdiag.decode import DARWIN_ABI

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
INCLUDES = REPOSITORY / "sockdiag" / "includes"
TARGETS = ("arm64-apple-macos12", "x86_64-apple-macos12")

# What each number the C code defines stands for in Apple's headers.
HEADER_NAMES: dict[str, tuple[str, ...]] = {
    "SD_CTL_NET": ("CTL_NET",),
    "SD_PF_ROUTE": ("PF_ROUTE",),
    "SD_PF_LINK": ("PF_LINK",),
    "SD_NET_RT_IFLIST2": ("NET_RT_IFLIST2",),
    "SD_NETLINK_GENERIC": ("NETLINK_GENERIC",),
    "SD_IFMIB_SYSTEM": ("IFMIB_SYSTEM",),
    "SD_IFMIB_IFCOUNT": ("IFMIB_IFCOUNT",),
    "SD_IFMIB_IFDATA": ("IFMIB_IFDATA",),
    "SD_IFDATA_GENERAL": ("IFDATA_GENERAL",),
    "SD_IFMIBDATA_SIZE": ("sizeof(struct ifmibdata)",),
    "SD_PROC_PIDLISTFDS": ("PROC_PIDLISTFDS",),
    "SD_PROC_FDINFO_SIZE": ("sizeof(struct proc_fdinfo)", "PROC_PIDLISTFD_SIZE"),
    "SD_PROC_PIDFDSOCKETINFO": ("PROC_PIDFDSOCKETINFO",),
    "SD_SOCKET_FDINFO_SIZE": ("sizeof(struct socket_fdinfo)", "PROC_PIDFDSOCKETINFO_SIZE"),
    "SD_PROX_FDTYPE_SOCKET": ("PROX_FDTYPE_SOCKET",),
    "SD_TCPI_STATE_OFFSET": ("offsetof(struct tcp_info, tcpi_state)",),
    "SD_TCPS_LISTEN": ("TCPS_LISTEN",),
    "SD_TCPI_SND_SBBYTES_OFFSET": ("offsetof(struct tcp_info, tcpi_snd_sbbytes)",),
    "SD_TCPI_TXUNACKED_OFFSET": ("offsetof(struct tcp_info, tcpi_txunacked)",),
    "SD_TCP_INFO_OPT": ("TCP_INFO",),
    "SD_SO_NWRITE": ("SO_NWRITE",),
    "SD_SO_NREAD": ("SO_NREAD",),
    "SD_TCP_CONNECTION_INFO": ("TCP_CONNECTION_INFO",),
}

SDK_HEADERS = """\
#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/sysctl.h>
#include <net/if.h>
#include <net/if_dl.h>
#include <net/if_mib.h>
#include <net/route.h>
#include <netinet/in.h>
#include <netinet/tcp_fsm.h>
#include <sys/proc_info.h>
#include <libproc.h>
"""


class Check(NamedTuple):
    """One _Static_assert: C ``expression`` == ``expected`` (a number, or sockdiag's C name)."""

    expression: str
    expected: str
    private: bool
    only_if: Optional[str] = None

    @property
    def assertion(self) -> str:
        condition = f"({self.expression}) == ({self.expected})"
        message = f"{self.expression} == {self.expected}"
        if self.only_if:
            condition = f"!({self.only_if}) || {condition}"
            message += f" when {self.only_if}"
        return f'_Static_assert({condition}, "{message}");'


def _is_private(expression: str) -> bool:
    return "struct tcp_info" in expression or expression == "TCP_INFO"


def decoder_checks() -> list[Check]:
    """What the Python decoders assume (sockdiag.decode.DARWIN_ABI)."""
    return [Check(abi.expression, str(abi.value), abi.private, abi.only_if) for abi in DARWIN_ABI]


def header_checks() -> list[Check]:
    """One check per SD_* number the C code defines for macOS; SystemExit if one is unmapped."""
    darwin_h = (INCLUDES / "darwin.h").read_text()
    compat_h = (INCLUDES / "compat.h").read_text()
    apple_branch = compat_h.split("#elif defined(__APPLE__)", 1)[1].split("#else", 1)[0]
    names = re.findall(r"^\s*(SD_[A-Z0-9_]+)\s*=", darwin_h, re.M)
    names += re.findall(r"^#define\s+(SD_[A-Z0-9_]+)\s+\S", apple_branch, re.M)
    names = [name for name in names if name not in ("SD_LINUX", "SD_DARWIN")]
    unmapped = sorted(set(names) - HEADER_NAMES.keys())
    if unmapped:
        raise SystemExit(f"audit: no Apple name for {', '.join(unmapped)} (add it to HEADER_NAMES)")
    # sockdiag's header is compiled in: the expected value is its own name.
    return [Check(apple, name, _is_private(apple)) for name in names for apple in HEADER_NAMES[name]]


def _members(expression: str) -> list[str]:
    """The struct tcp_info member names an expression uses."""
    found = re.findall(r"struct tcp_info, (\w+)\)|->(\w+)\)", expression)
    return [name for pair in found for name in pair if name]


def program(private_text: str | None, private_include: str | None,
            names: set[str]) -> tuple[str, int, list[str]]:
    """(C source, number of asserts, skipped expressions) for one private header or none.

    A constant the headers do not declare (``names`` are the identifiers
    they do) is skipped and listed: older SDKs lack some (PROX_FDTYPE_CHANNEL).
    """
    lines, skipped = [], []
    for check in decoder_checks() + header_checks():
        if re.fullmatch(r"[A-Z_][A-Z0-9_]*", check.expression) and check.expression not in names:
            skipped.append(check.expression)
            continue
        if check.private:
            if private_text is None:
                skipped.append(check.expression)
                continue
            missing = [m for m in _members(check.expression) if not re.search(rf"\b{m}\b", private_text)]
            if missing:
                skipped.append(check.expression)
                continue
        lines.append(check.assertion)
    return _headers(private_include) + "\n".join(lines) + "\n", len(lines), skipped


def tcp_info_of_old_tcp_h(text: str, path: pathlib.Path) -> str:
    """struct tcp_info (with struct tcp_conn_status before it) and TCP_INFO from an old XNU tcp.h.

    The text from the ``#pragma pack(4)`` before the struct to its end, then
    ``#pragma pack()``: the same layout rules as in the kernel's header.
    """
    start = text.find("struct tcp_info {")
    pack = text.rfind("#pragma pack(4)", 0, start)
    option = re.search(r"^#define\s+TCP_INFO\s+(0x[0-9a-fA-F]+)", text, re.M)
    if start < 0 or pack < 0 or option is None:
        raise SystemExit(f"audit: {path}: no struct tcp_info under #pragma pack(4), or no TCP_INFO")
    end = text.index("\n};", start) + 3
    cut = text[pack:end]
    if re.search(r"^\s*#\s*(if|endif|else|elif)", cut, re.M):
        raise SystemExit(f"audit: {path}: preprocessor conditions inside struct tcp_info's region")
    return f"{cut}\n#pragma pack()\n#define TCP_INFO {option.group(1)}\n"


def _headers(private_include: str | None) -> str:
    private = f"#include <{private_include}>\n" if private_include else ""
    return SDK_HEADERS + "#include <netinet/tcp.h>\n" + private + '#include "darwin.h"\n\n'


def _clang(clang: str, sdk: pathlib.Path, target: str, include_dir: pathlib.Path,
           *options: str) -> list[str]:
    return [clang, "-target", target, "-isysroot", str(sdk),
            f"-I{include_dir}", f"-I{INCLUDES}", *options]


def declared_names(clang: str, sdk: pathlib.Path, target: str, include_dir: pathlib.Path,
                   private_include: str | None) -> set[str]:
    """Upper-case identifiers the headers define or declare for target (macros and enums)."""
    path = include_dir / "abi_headers.c"
    path.write_text(_headers(private_include))
    result = subprocess.run(_clang(clang, sdk, target, include_dir, "-E", "-dD", str(path)),
                            capture_output=True, text=True)
    return set(re.findall(r"\b[A-Z_][A-Z0-9_]*\b", result.stdout))


def compile_checks(clang: str, sdk: pathlib.Path, target: str, source: str,
                   include_dir: pathlib.Path) -> list[str]:
    """clang's error lines for one target; empty when every assertion holds."""
    path = include_dir / "abi_audit.c"
    path.write_text(source)
    command = _clang(clang, sdk, target, include_dir, "-fsyntax-only", "-Wall", "-Werror", str(path))
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode == 0:
        return []
    return [line for line in result.stderr.splitlines() if "error:" in line] or [result.stderr]


def _sdk_name(sdk: pathlib.Path) -> str:
    return sdk.resolve().name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sdk", required=True, type=pathlib.Path,
                        help="an SDK root holding usr/include (xcrun --show-sdk-path on a Mac)")
    parser.add_argument("--private-header", action="append", default=[], type=pathlib.Path,
                        help="XNU's bsd/netinet/tcp_private.h, or tcp.h before xnu-8792 (repeatable)")
    parser.add_argument("--clang", default="clang")
    args = parser.parse_args(argv)
    if shutil.which(args.clang) is None:
        print(f"audit: {args.clang} not found", file=sys.stderr)
        return 2
    if not (args.sdk / "usr" / "include" / "sys" / "proc_info.h").is_file():
        print(f"audit: {args.sdk} has no usr/include/sys/proc_info.h: not a macOS SDK", file=sys.stderr)
        return 2
    for header in args.private_header:
        if header.name not in ("tcp_private.h", "tcp.h") or not header.is_file():
            print(f"audit: {header}: expected XNU's tcp_private.h or tcp.h", file=sys.stderr)
            return 2
    failures = 0
    print(f"SDK {_sdk_name(args.sdk)} ({args.sdk}); "
          f"{len(DARWIN_ABI)} checks from sockdiag.decode.DARWIN_ABI, "
          f"{len(header_checks())} from includes/darwin.h and compat.h")
    for header in [None, *args.private_header]:
        with tempfile.TemporaryDirectory() as tmp:
            include_dir = pathlib.Path(tmp)
            include, text = None, None
            if header is not None:
                text = header.read_text(errors="replace")
                if header.name == "tcp.h":
                    text = tcp_info_of_old_tcp_h(text, header)
                    include = "xnu_tcp_info.h"
                else:
                    include = "netinet/tcp_private.h"
                (include_dir / include).parent.mkdir(exist_ok=True)
                (include_dir / include).write_text(text)
            what = "SDK only" if header is None else f"+ {header}"
            for target in TARGETS:
                names = declared_names(args.clang, args.sdk, target, include_dir, include)
                source, asserts, skipped = program(text, include, names)
                errors = compile_checks(args.clang, args.sdk, target, source, include_dir)
                failures += bool(errors)
                print(f"  {'FAIL' if errors else 'ok':4} {target:22} {what}: {asserts} asserts "
                      f"{str(len(errors)) + ' failed' if errors else 'hold'}, {len(skipped)} skipped")
                for line in errors:
                    print(f"       {line}")
            names = sorted({name for expression in skipped for name in _names(expression)})
            if header is not None and names:
                print(f"       not in these headers, skipped: {', '.join(names)}")
            elif header is None and any(not _is_private(e) for e in skipped):
                print("       not in these headers, skipped: "
                      + ", ".join(sorted({e for e in skipped if not _is_private(e)})))
    return 1 if failures else 0


def _names(expression: str) -> list[str]:
    return _members(expression) or [expression]


if __name__ == "__main__":
    sys.exit(main())
