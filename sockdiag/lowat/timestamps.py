"""Linux SO_TIMESTAMPING for TCP senders: how long written bytes wait.

The sender asks for a software timestamp when a chosen write's last byte
enters the qdisc (SCHED) and when the peer acknowledges it (ACK).  The
kernel queues each one on the socket's error queue as two control messages:
``scm_timestamping`` (three timespecs; the first is the software stamp, in
CLOCK_REALTIME) and ``sock_extended_err`` (``ee_info`` says which event,
``ee_data`` is the byte offset of the write's last byte, counted from the
moment OPT_ID was switched on).  The values below are from
include/uapi/linux/net_tstamp.h and errqueue.h.
"""

from __future__ import annotations

import errno
import socket
import struct
from typing import Iterable, Optional

from .._common import FrozenStruct

SO_TIMESTAMPING = 37  # SO_TIMESTAMPING_OLD: a timespec of native longs
SCM_TIMESTAMPING = SO_TIMESTAMPING

SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_OPT_ID = 1 << 7
SOF_TIMESTAMPING_TX_SCHED = 1 << 8
SOF_TIMESTAMPING_TX_ACK = 1 << 9
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11

# Set on the socket: report software stamps, number bytes, no payload copies.
SOCKET_FLAGS = SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY
# Sent as a control message with the writes to be stamped (Linux >= 4.13).
WRITE_FLAGS = SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_ACK

SCM_TSTAMP_SND = 0
SCM_TSTAMP_SCHED = 1
SCM_TSTAMP_ACK = 2
_EVENT_NAMES = {SCM_TSTAMP_SND: "snd", SCM_TSTAMP_SCHED: "sched", SCM_TSTAMP_ACK: "ack"}

SO_EE_ORIGIN_TIMESTAMPING = 4
_IP_RECVERR = 11
_IPV6_RECVERR = 25
_ERROR_CMSGS = {(socket.IPPROTO_IP, _IP_RECVERR), (socket.IPPROTO_IPV6, _IPV6_RECVERR)}

_TIMESPECS = struct.Struct("@llllll")  # struct scm_timestamping: ts[3]
_EXTENDED_ERR = struct.Struct("@IBBBBII")  # struct sock_extended_err
ANCILLARY_BUFSIZE = 256


class TxTimestamp(FrozenStruct):
    """One transmit timestamp from the error queue.

    ``event``: "sched" (entered the qdisc), "ack" (acknowledged) or "snd"
    (left the driver).  ``byte_offset``: the offset of the stamped write's
    last byte modulo 2**32.  ``realtime_ns``: when, in CLOCK_REALTIME ns.
    """

    event: str
    byte_offset: int
    realtime_ns: int


def decode_errqueue(ancdata: Iterable[tuple[int, int, bytes]]) -> Optional[TxTimestamp]:
    """The timestamp in one MSG_ERRQUEUE message's control messages.

    ancdata is what ``socket.recvmsg`` returned.  None when the message is
    not a timestamp (another error).  ValueError when a control message is
    truncated or inconsistent; never reads past the data it was given.
    """
    stamp_ns = None
    extended = None
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPING:
            if len(data) < _TIMESPECS.size:
                raise ValueError(
                    f"scm_timestamping of {len(data)} bytes, expected {_TIMESPECS.size}")
            seconds, nanoseconds = _TIMESPECS.unpack_from(data)[:2]
            if seconds < 0 or not 0 <= nanoseconds < 1_000_000_000:
                raise ValueError(f"invalid timespec {seconds}.{nanoseconds:09d}")
            stamp_ns = seconds * 1_000_000_000 + nanoseconds
        elif (level, kind) in _ERROR_CMSGS:
            if len(data) < _EXTENDED_ERR.size:
                raise ValueError(
                    f"sock_extended_err of {len(data)} bytes, expected {_EXTENDED_ERR.size}")
            extended = _EXTENDED_ERR.unpack_from(data)
    if extended is None:
        if stamp_ns is not None:
            raise ValueError("scm_timestamping without sock_extended_err")
        return None
    ee_errno, ee_origin, _type, _code, _pad, ee_info, ee_data = extended
    if ee_origin != SO_EE_ORIGIN_TIMESTAMPING:
        return None
    if ee_errno != errno.ENOMSG:
        raise ValueError(f"timestamp with ee_errno {ee_errno}, expected ENOMSG")
    if ee_info not in _EVENT_NAMES:
        raise ValueError(f"unknown timestamp event {ee_info}")
    if stamp_ns is None:
        raise ValueError("timestamp notification without scm_timestamping")
    return TxTimestamp(_EVENT_NAMES[ee_info], ee_data, stamp_ns)


def enable(sock: socket.socket) -> None:
    """Switch on byte-numbered software timestamps; call before the first write."""
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, SOCKET_FLAGS)


def write_cmsg() -> list[tuple[int, int, bytes]]:
    """The control message that asks for SCHED and ACK stamps of one sendmsg."""
    return [(socket.SOL_SOCKET, SO_TIMESTAMPING, struct.pack("@I", WRITE_FLAGS))]
