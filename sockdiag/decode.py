"""Pure decoders of kernel buffers, callable on every platform from bytes.

Each takes the bytes a kernel call returned and gives a record.  Short,
truncated or hostile input raises ValueError; nothing reads out of bounds.
The Linux decoders run in _fast (the compiler lays out the bit-fields); the
macOS ones are struct-based, following shared/reference/macos-abi.md.
"""

from __future__ import annotations

from . import _fast
from ._common import InterfaceCounters, LinkStats64, TcpInfo


def tcp_info_linux(buf: bytes) -> TcpInfo:
    """Decode a Linux ``struct tcp_info`` of whatever length a kernel returned.

    Fields past the end of ``buf`` are ``None``; bytes past the newest known
    layout (280 bytes, Linux 6.18) are ignored.  ValueError under 8 bytes.
    """
    return _fast.decode_tcp_info_linux(buf)


def rtnl_link_stats64(buf: bytes) -> LinkStats64:
    """Decode a Linux ``IFLA_STATS64`` payload (``struct rtnl_link_stats64``).

    Decoded by its length: fields a shorter (older kernel's) struct lacks are
    ``None``, bytes past the newest known layout (200 bytes, Linux 6.18) are
    ignored.  ValueError under 184 bytes (the oldest layout, Linux 2.6.35).
    The rtnetlink dump behind ``sockdiag.interfaces()`` decodes with the same
    routine.
    """
    return _fast.decode_link_stats64(buf)


def rtnl_link_dump(buf: bytes) -> dict[str, InterfaceCounters]:
    """Decode a whole rtnetlink ``RTM_GETLINK`` dump: {interface name: InterfaceCounters}.

    ``buf`` is the datagrams the kernel sent, concatenated, up to and
    including ``NLMSG_DONE``.  ValueError when a length points outside the
    buffer, a link message lacks its name, an ``IFLA_STATS64`` is shorter
    than any kernel's struct, the dump carries an ``NLMSG_ERROR``, was
    interrupted (``NLM_F_DUMP_INTR``: not one snapshot) or does not end in
    ``NLMSG_DONE``.  Links without ``IFLA_STATS64`` have ``None`` counters.
    """
    return _fast.decode_rtnl_link_dump(buf)
