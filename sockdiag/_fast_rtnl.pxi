# Interface counters: one rtnetlink RTM_GETLINK dump (Linux), and the walker
# of its messages, which also decodes captured dumps on every platform.
# Every length read from the buffer is checked against what remains of it.

from libc.errno cimport EINTR, EMSGSIZE, EAGAIN
from libc.string cimport memchr
from cpython.exc cimport PyErr_CheckSignals

from .includes.netlink cimport *
from .includes.rtnl cimport *

from ._common import InterfaceCounters, LinkStats64


cdef extern from "Python.h":
    object PyUnicode_DecodeFSDefaultAndSize(const char *s, Py_ssize_t size)


# Slots of InterfaceCounters, in the order of this layout.
cdef enum:
    IC_NAME, IC_INDEX, IC_IS_UP, IC_MTU
    IC_RX_BYTES, IC_TX_BYTES, IC_RX_PACKETS, IC_TX_PACKETS
    IC_RX_ERRORS, IC_TX_ERRORS, IC_RX_DROPS, IC_TX_DROPS

cdef _Layout INTERFACE_COUNTERS = _Layout(InterfaceCounters, (
    "name", "index", "is_up", "mtu",
    "rx_bytes", "tx_bytes", "rx_packets", "tx_packets",
    "rx_errors", "tx_errors", "rx_drops", "tx_drops", "counters_note",
))
cdef _Layout LINK_STATS64 = _Layout(
    LinkStats64,
    tuple(sd_link_stats64_names[i].decode() for i in range(SD_LINK_STATS64_NFIELDS)))

cdef enum:
    WALK_DONE = 1         # NLMSG_DONE (or NLMSG_ERROR) seen: the dump is over
    WALK_INTERRUPTED = 2  # NLM_F_DUMP_INTR: links changed during the dump
    DUMP_ATTEMPTS = 5
    MAX_ERRNO = 4095  # the kernel's errors are -1 .. -MAX_ERRNO
    NLA_TYPE_MASK = 0x3fff  # strips NLA_F_NESTED / NLA_F_NET_BYTEORDER
    RECV_BUFFER_BYTES = 32768  # the kernel's largest dump datagram (MSG_TRUNC tells if not)


cdef object _link_stats64_record(const unsigned char *payload, size_t length):
    cdef uint64_t stats[32]
    cdef int i, present = sd_link_stats64_read(payload, length, stats)
    if present < 0:
        raise ValueError(
            f"rtnl_link_stats64 of {length} bytes: every kernel sends at least "
            f"{SD_LINK_STATS64_MIN_FIELDS * 8}")
    record = LINK_STATS64.new()
    for i in range(present):
        LINK_STATS64.put(record, i, stats[i])
    return record


def decode_link_stats64(const unsigned char[::1] buf not None):
    """Decode an IFLA_STATS64 payload (struct rtnl_link_stats64) into a LinkStats64."""
    if buf.shape[0] == 0:
        raise ValueError("rtnl_link_stats64 buffer is empty")
    return _link_stats64_record(&buf[0], buf.shape[0])


cdef int _link_message(const unsigned char *body, size_t length, dict out) except -1:
    """Decode one RTM_NEWLINK body (ifinfomsg + attributes) into out[name]."""
    cdef sd_ifinfomsg info
    cdef sd_rtattr attr
    cdef size_t offset = SD_IFINFOMSG_LEN
    cdef size_t payload_length
    cdef const unsigned char *payload
    cdef const unsigned char *nul
    cdef uint32_t mtu
    cdef uint64_t stats[32]
    cdef int type_
    if length < SD_IFINFOMSG_LEN:
        raise ValueError(f"RTM_NEWLINK body of {length} bytes, shorter than ifinfomsg")
    memcpy(&info, body, SD_IFINFOMSG_LEN)
    record = INTERFACE_COUNTERS.new()
    name = None
    INTERFACE_COUNTERS.put(record, IC_INDEX, info.ifi_index)
    INTERFACE_COUNTERS.put(record, IC_IS_UP, bool(info.ifi_flags & SD_IFF_UP))
    while offset < length and length - offset >= SD_RTA_HDRLEN:
        memcpy(&attr, body + offset, SD_RTA_HDRLEN)
        if attr.rta_len < SD_RTA_HDRLEN or attr.rta_len > length - offset:
            raise ValueError(
                f"attribute of {attr.rta_len} bytes at offset {offset} of a "
                f"{length}-byte link message")
        payload = body + offset + SD_RTA_HDRLEN
        payload_length = attr.rta_len - SD_RTA_HDRLEN
        type_ = attr.rta_type & NLA_TYPE_MASK
        if type_ == SD_IFLA_IFNAME:
            nul = <const unsigned char *>memchr(payload, 0, payload_length)
            if nul != NULL:
                payload_length = nul - payload
            if payload_length == 0:
                raise ValueError("IFLA_IFNAME is empty")
            name = PyUnicode_DecodeFSDefaultAndSize(<const char *>payload, payload_length)
            INTERFACE_COUNTERS.put(record, IC_NAME, name)
        elif type_ == SD_IFLA_MTU:
            if payload_length < 4:
                raise ValueError(f"IFLA_MTU of {payload_length} bytes")
            memcpy(&mtu, payload, 4)
            INTERFACE_COUNTERS.put(record, IC_MTU, mtu)
        elif type_ == SD_IFLA_STATS64:
            if sd_link_stats64_read(payload, payload_length, stats) < 0:
                raise ValueError(f"IFLA_STATS64 of {payload_length} bytes")
            INTERFACE_COUNTERS.put(record, IC_RX_BYTES, stats[SD_STATS_RX_BYTES])
            INTERFACE_COUNTERS.put(record, IC_TX_BYTES, stats[SD_STATS_TX_BYTES])
            INTERFACE_COUNTERS.put(record, IC_RX_PACKETS, stats[SD_STATS_RX_PACKETS])
            INTERFACE_COUNTERS.put(record, IC_TX_PACKETS, stats[SD_STATS_TX_PACKETS])
            INTERFACE_COUNTERS.put(record, IC_RX_ERRORS, stats[SD_STATS_RX_ERRORS])
            INTERFACE_COUNTERS.put(record, IC_TX_ERRORS, stats[SD_STATS_TX_ERRORS])
            INTERFACE_COUNTERS.put(record, IC_RX_DROPS, stats[SD_STATS_RX_DROPPED])
            INTERFACE_COUNTERS.put(record, IC_TX_DROPS, stats[SD_STATS_TX_DROPPED])
        offset += SD_ALIGN4(attr.rta_len)
    if offset < length:
        raise ValueError(f"truncated attribute at the end of a {length}-byte link message")
    if name is None:
        raise ValueError(f"link message for index {info.ifi_index} without IFLA_IFNAME")
    out[name] = record
    return 0


cdef int _walk_link_dump(const unsigned char *buf, size_t length, dict out,
                         int *netlink_errno) except -1:
    """Decode the netlink messages in buf, adding a record per link to out.

    Returns WALK_* flags.  An NLMSG_ERROR ends the dump with its errno in
    netlink_errno (0 for an acknowledgement).  Malformed input: ValueError.
    """
    cdef sd_nlmsghdr header
    cdef size_t offset = 0
    cdef int flags = 0
    cdef int32_t error
    while offset < length and length - offset >= SD_NLMSG_HDRLEN:
        memcpy(&header, buf + offset, SD_NLMSG_HDRLEN)
        if header.nlmsg_len < SD_NLMSG_HDRLEN or header.nlmsg_len > length - offset:
            raise ValueError(
                f"netlink message of {header.nlmsg_len} bytes at offset {offset} "
                f"of a {length}-byte buffer")
        if header.nlmsg_flags & SD_NLM_F_DUMP_INTR:
            flags |= WALK_INTERRUPTED
        if header.nlmsg_type == SD_NLMSG_DONE:
            return flags | WALK_DONE
        if header.nlmsg_type == SD_NLMSG_ERROR:
            if header.nlmsg_len < SD_NLMSG_HDRLEN + 4:
                raise ValueError("NLMSG_ERROR without its error code")
            memcpy(&error, buf + offset + SD_NLMSG_HDRLEN, 4)
            if error > 0 or error < -MAX_ERRNO:
                raise ValueError(f"NLMSG_ERROR with error code {error}, not 0 or -errno")
            netlink_errno[0] = -error
            return flags | WALK_DONE
        if header.nlmsg_type == SD_RTM_NEWLINK:
            _link_message(buf + offset + SD_NLMSG_HDRLEN,
                          header.nlmsg_len - SD_NLMSG_HDRLEN, out)
        # The last message of a datagram may lack its padding.
        offset += SD_ALIGN4(header.nlmsg_len)
    if offset < length:
        raise ValueError(f"truncated netlink message at offset {offset} of {length} bytes")
    return flags


def decode_rtnl_link_dump(const unsigned char[::1] buf not None):
    """Decode a whole RTM_GETLINK dump (the datagrams concatenated) to {name: InterfaceCounters}.

    ValueError when it is malformed, does not end in NLMSG_DONE, carries an
    NLMSG_ERROR or was interrupted (NLM_F_DUMP_INTR: not one snapshot).
    """
    cdef int netlink_errno = 0
    cdef dict out = {}
    cdef int flags = 0
    if buf.shape[0] > 0:
        flags = _walk_link_dump(&buf[0], buf.shape[0], out, &netlink_errno)
    if netlink_errno:
        raise ValueError(f"the dump carries a netlink error: {os.strerror(netlink_errno)}")
    if not flags & WALK_DONE:
        raise ValueError("the dump does not end in NLMSG_DONE")
    if flags & WALK_INTERRUPTED:
        raise ValueError("the dump was interrupted (NLM_F_DUMP_INTR): not one snapshot")
    return out


def rtnl_interfaces(int attempts=DUMP_ATTEMPTS):
    """Counters of every link, {name: InterfaceCounters}, from one RTM_GETLINK dump.

    Dumps again, up to attempts in all, while links change mid-dump.  Raises
    OSError for a failed call (ENOSYS off Linux; EAGAIN when every attempt
    was interrupted) and ValueError for a malformed reply.
    """
    cdef unsigned char buf[RECV_BUFFER_BYTES]
    cdef int fd, attempt, flags, err
    cdef int netlink_errno = 0
    cdef ssize_t received
    cdef dict out
    for attempt in range(attempts):
        fd = sd_rtnl_getlink_dump(attempt + 1)
        if fd < 0:
            err = errno
            raise OSError(err, f"rtnetlink RTM_GETLINK dump: {os.strerror(err)}")
        try:
            out = {}
            flags = 0
            while not flags & WALK_DONE:
                with nogil:
                    received = recv(fd, buf, RECV_BUFFER_BYTES, MSG_TRUNC)
                if received < 0:
                    err = errno
                    if err == EINTR:
                        PyErr_CheckSignals()  # a handler's exception (Ctrl-C) wins
                        continue
                    raise OSError(err, f"recv from rtnetlink: {os.strerror(err)}")
                if received > RECV_BUFFER_BYTES:
                    raise OSError(EMSGSIZE, f"rtnetlink sent a {received}-byte datagram")
                if received == 0:
                    raise ValueError("rtnetlink ended the dump without NLMSG_DONE")
                flags |= _walk_link_dump(buf, received, out, &netlink_errno)
        finally:
            close(fd)
        if netlink_errno:
            raise OSError(netlink_errno, f"rtnetlink RTM_GETLINK: {os.strerror(netlink_errno)}")
        if not flags & WALK_INTERRUPTED:
            return out
    raise OSError(EAGAIN, f"links changed during each of {attempts} rtnetlink dumps")
