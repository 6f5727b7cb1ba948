"""One-time check on a real Mac: the SDK's struct layouts against sockdiag's decoders.

The decoders were written from XNU's headers without a Mac.  This compiles a
tiny C program against the SDK, prints sizeof/offsetof of every field the
decoders read and every constant sockdiag hard-codes, and compares them with
the decoders' own constants.  The private tcp_info is not in the SDK, so only
what the SDK exposes is checked.  Exit status 1 on any difference.

Run from the repository root after installing sockdiag: python .github/macos/check_layout.py
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile

from sockdiag import decode

# (C expression, the value sockdiag assumes)
FDINFO = "struct socket_fdinfo"
CHECKS: list[tuple[str, int]] = [
    # NET_RT_IFLIST2 (decode.iflist2_darwin)
    ("sizeof(struct if_msghdr2)", decode.IF_MSGHDR2_SIZE),
    ("offsetof(struct if_msghdr2, ifm_addrs)", 4),
    ("offsetof(struct if_msghdr2, ifm_flags)", 8),
    ("offsetof(struct if_msghdr2, ifm_index)", 12),
    ("offsetof(struct if_msghdr2, ifm_snd_drops)", 24),
    ("offsetof(struct if_msghdr2, ifm_data)", 32),
    ("sizeof(struct if_data64)", 128),
    ("offsetof(struct if_data64, ifi_mtu)", 8),
    ("offsetof(struct if_data64, ifi_ipackets)", 24),
    ("offsetof(struct if_data64, ifi_ierrors)", 32),
    ("offsetof(struct if_data64, ifi_opackets)", 40),
    ("offsetof(struct if_data64, ifi_oerrors)", 48),
    ("offsetof(struct if_data64, ifi_ibytes)", 64),
    ("offsetof(struct if_data64, ifi_obytes)", 72),
    ("offsetof(struct if_data64, ifi_iqdrops)", 96),
    ("offsetof(struct if_data64, ifi_lastchange)", 120),
    ("sizeof(struct ifa_msghdr)", 20),
    ("sizeof(struct ifma_msghdr2)", 20),
    ("offsetof(struct sockaddr_dl, sdl_nlen)", 5),
    ("offsetof(struct sockaddr_dl, sdl_data)", 8),
    ("RTM_VERSION", decode.RTM_VERSION),
    ("RTM_IFINFO2", decode.RTM_IFINFO2),
    ("RTM_NEWADDR", 0xC),
    ("RTM_NEWMADDR2", 0x13),
    ("RTA_IFP", 1 << decode._RTAX_IFP),
    ("RTAX_MAX", decode._RTAX_MAX),
    ("AF_LINK", decode._AF_LINK),
    ("NET_RT_IFLIST2", 6),
    ("IFF_UP", decode._IFF_UP),
    # IFMIB (decode.ifmibdata_darwin)
    ("sizeof(struct ifmibdata)", decode.IFMIBDATA_SIZE),
    ("offsetof(struct ifmibdata, ifmd_flags)", 20),
    ("offsetof(struct ifmibdata, ifmd_snd_drops)", 32),
    ("offsetof(struct ifmibdata, ifmd_data)", 52),
    ("IFMIB_SYSTEM", 1), ("IFMIB_IFCOUNT", 1), ("IFMIB_IFDATA", 2), ("IFDATA_GENERAL", 1),
    ("NETLINK_GENERIC", 0),
    # libproc (decode.proc_fdlist_darwin, decode.socket_fdinfo_darwin)
    ("sizeof(struct proc_fdinfo)", 8),
    ("PROC_PIDLISTFDS", 1),
    ("PROC_PIDFDSOCKETINFO", 3),
    (f"sizeof({FDINFO})", decode.SOCKET_FDINFO_SIZE),
    ("PROC_PIDFDSOCKETINFO_SIZE", decode.SOCKET_FDINFO_SIZE),
    (f"offsetof({FDINFO}, psi.soi_so)", decode._SOI_SO),
    (f"offsetof({FDINFO}, psi.soi_family)", decode._SOI_FAMILY),
    (f"offsetof({FDINFO}, psi.soi_qlen)", decode._SOI_QLEN),
    (f"offsetof({FDINFO}, psi.soi_rcv.sbi_cc)", decode._SOI_RCV_CC),
    (f"offsetof({FDINFO}, psi.soi_snd.sbi_cc)", decode._SOI_SND_CC),
    (f"offsetof({FDINFO}, psi.soi_snd.sbi_hiwat)", decode._SOI_SND_HIWAT),
    (f"offsetof({FDINFO}, psi.soi_kind)", decode._SOI_KIND),
    (f"offsetof({FDINFO}, psi.soi_proto.pri_tcp.tcpsi_ini.insi_fport)", decode._INSI_FPORT),
    (f"offsetof({FDINFO}, psi.soi_proto.pri_tcp.tcpsi_ini.insi_lport)", decode._INSI_LPORT),
    (f"offsetof({FDINFO}, psi.soi_proto.pri_tcp.tcpsi_ini.insi_vflag)", decode._INSI_VFLAG),
    (f"offsetof({FDINFO}, psi.soi_proto.pri_tcp.tcpsi_ini.insi_faddr)", decode._INSI_FADDR),
    (f"offsetof({FDINFO}, psi.soi_proto.pri_tcp.tcpsi_ini.insi_laddr)", decode._INSI_LADDR),
    (f"offsetof({FDINFO}, psi.soi_proto.pri_tcp.tcpsi_ini.insi_faddr.ina_46.i46a_addr4)",
     decode._INSI_FADDR + 12),
    (f"offsetof({FDINFO}, psi.soi_proto.pri_tcp.tcpsi_state)", decode._TCPSI_STATE),
    ("SOCKINFO_TCP", decode._SOCKINFO_TCP),
    ("INI_IPV4", decode._INI_IPV4), ("INI_IPV6", decode._INI_IPV6),
    ("AF_INET6", decode._AF_INET6),
    ("TSI_S_ESTABLISHED", 4), ("TSI_S_TIME_WAIT", 10), ("TSI_S_LISTEN", decode._TSI_S_LISTEN),
    ("TCPS_ESTABLISHED", 4), ("TCPS_LISTEN", 1),
] + [(f"PROX_FDTYPE_{name.upper()}", number) for number, name in decode.DARWIN_FD_TYPES.items()] + [
    # TCP_CONNECTION_INFO (decode.tcp_connection_info_darwin); tcp_info is private.
    ("TCP_CONNECTION_INFO", 0x106),
    ("TCP_NOTSENT_LOWAT", 0x201),
    ("SO_NWRITE", 0x1024),
    ("sizeof(struct tcp_connection_info)", 112),
] + [
    (f"offsetof(struct tcp_connection_info, {member})", offset)
    for member, offset in (
        ("tcpi_state", 0), ("tcpi_snd_wscale", 1), ("tcpi_rcv_wscale", 2), ("tcpi_options", 4),
        ("tcpi_rto", 12), ("tcpi_maxseg", 16), ("tcpi_snd_ssthresh", 20), ("tcpi_snd_cwnd", 24),
        ("tcpi_snd_wnd", 28), ("tcpi_snd_sbbytes", 32), ("tcpi_rcv_wnd", 36), ("tcpi_srtt", 44),
        ("tcpi_rttvar", 48), ("tcpi_txpackets", 56), ("tcpi_txbytes", 64),
        ("tcpi_txretransmitbytes", 72), ("tcpi_rxpackets", 80), ("tcpi_rxbytes", 88),
        ("tcpi_rxoutoforderbytes", 96), ("tcpi_txretransmitpackets", 104),
    )
]

# The decoders' own offset tables must agree with the list above.
_CONNECTION_INFO_OFFSETS = {name: offset for name, _fmt, offset, _c in decode._DARWIN_TCP_CONNECTION_INFO}
assert _CONNECTION_INFO_OFFSETS["bytes_sent"] == 64 and _CONNECTION_INFO_OFFSETS["rtt_us"] == 44

PROGRAM = """\
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/sysctl.h>
#include <net/if.h>
#include <net/if_dl.h>
#include <net/if_mib.h>
#include <net/route.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/tcp_fsm.h>
#include <sys/proc_info.h>
#include <libproc.h>

int main(void) {
%s
    return 0;
}
"""


def main() -> int:
    lines = "\n".join(f'    printf("%%ld\\n", (long)({expr}));' for expr, _ in CHECKS)
    with tempfile.TemporaryDirectory() as tmp:
        source = pathlib.Path(tmp) / "layout.c"
        binary = pathlib.Path(tmp) / "layout"
        source.write_text(PROGRAM % lines)
        subprocess.run(["cc", "-Wall", "-o", str(binary), str(source)], check=True)
        values = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.split()
    failures = 0
    for (expr, expected), value in zip(CHECKS, values, strict=True):
        ok = int(value) == expected
        failures += not ok
        print(f"{'ok  ' if ok else 'DIFF'} {expr} = {value} (sockdiag assumes {expected})")
    print(f"{len(CHECKS) - failures} of {len(CHECKS)} match")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
