"""Decoding cost of the macOS paths, measurable on any machine (no Mac here).

The syscalls themselves can only be timed on macOS; what sockdiag adds on
top of them is the decoding measured here, on synthetic buffers of a typical
size: a route dump of 40 interfaces with addresses and multicast records,
40 IFMIB records, and the libproc answers for a process with 1,000 sockets.
Run: pytest bench/bench_darwin.py
"""

from __future__ import annotations

from testsupport import darwin_buffers as mk
from sockdiag import _darwin, decode

INTERFACES = 40
SOCKETS = 1000


def _route_dump() -> bytes:
    parts = []
    for index in range(1, INTERFACES + 1):
        name = f"en{index}"
        parts.append(mk.ifinfo2(index, {mk.RTA_IFP: mk.sockaddr_dl(index, name, b"\xaa" * 6)},
                                ibytes=index << 20, obytes=index << 21))
        parts.append(mk.newaddr(index, {mk.RTA_NETMASK: mk.sockaddr_in("255.255.255.0"),
                                        mk.RTA_IFA: mk.sockaddr_in(f"10.0.{index}.1"),
                                        mk.RTA_BRD: mk.sockaddr_in(f"10.0.{index}.255")}))
        parts.append(mk.newaddr(index, {mk.RTA_NETMASK: mk.sockaddr_in6("ffff:ffff:ffff:ffff::"),
                                        mk.RTA_IFA: mk.sockaddr_in6(f"fe80::{index}")}))
        for group in ("224.0.0.1", "224.0.0.251"):
            parts.append(mk.newmaddr2(index, {mk.RTA_IFP: mk.sockaddr_dl(index, name),
                                              mk.RTA_IFA: mk.sockaddr_in(group)}))
    return b"".join(parts)


ROUTE_DUMP = _route_dump()
IFMIB = [(index, mk.ifmibdata(f"en{index}", ibytes=index << 33)) for index in range(1, INTERFACES + 1)]
FD_LIST = mk.fd_list([(fd, 2) for fd in range(3, SOCKETS + 3)])
FDINFOS = [(fd, mk.socket_fdinfo(local=("10.0.0.1", 443), remote=("10.0.0.2", 40000 + fd),
                                 snd_cc=fd, snd_hiwat=131072))
           for fd in range(3, SOCKETS + 3)]


def _interfaces():
    listed = decode.iflist2_darwin(ROUTE_DUMP)
    exact = [decode.ifmibdata_darwin(buf, index) for index, buf in IFMIB]
    return _darwin.with_exact_bytes(listed, exact)


def _process_sockets():
    fds = decode.proc_fdlist_darwin(FD_LIST)
    assert len(fds) == SOCKETS
    return [decode.socket_fdinfo_darwin(buf, fd) for fd, buf in FDINFOS]


def test_decode_interfaces_40(benchmark):
    result = benchmark(_interfaces)
    assert len(result) == INTERFACES and result["en3"].rx_bytes == 3 << 33


def test_decode_process_sockets_1000(benchmark):
    result = benchmark(_process_sockets)
    assert len(result) == SOCKETS and result[0].send_queue == 3
