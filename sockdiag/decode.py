"""Pure decoders of kernel buffers, callable on every platform from bytes.

Each takes the bytes a kernel call returned and gives a record.  Short,
truncated or hostile input raises ValueError; nothing reads out of bounds.
The Linux decoders run in _fast (the compiler lays out the bit-fields); the
macOS ones are struct-based, following shared/reference/macos-abi.md.
"""

from __future__ import annotations

from typing import Optional

from . import _fast
from ._common import SocketInfo, TcpInfo


def tcp_info_linux(buf: bytes) -> TcpInfo:
    """Decode a Linux ``struct tcp_info`` of whatever length a kernel returned.

    Fields past the end of ``buf`` are ``None``; bytes past the newest known
    layout (280 bytes, Linux 6.18) are ignored.  ValueError under 8 bytes.
    """
    return _fast.decode_tcp_info_linux(buf)


def inet_diag_dump(buf: bytes, fds: Optional[dict[int, int]] = None) -> list[SocketInfo]:
    """Decode the bytes of a Linux NETLINK_SOCK_DIAG TCP dump into SocketInfo.

    ``buf`` holds whole netlink messages (what one or more ``recv`` returned,
    NLMSG_DONE included or not).  ``fds`` maps socket inode -> fd: only those
    sockets become records, carrying their fd; ``None`` decodes every socket
    (``fd`` is then ``None``).  The same decoder as process_sockets.
    ValueError for malformed input; OSError for a kernel NLMSG_ERROR message.
    """
    return _fast.decode_inet_diag_dump(buf, fds)
