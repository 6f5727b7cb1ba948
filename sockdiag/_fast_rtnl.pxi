# Interface counters: one rtnetlink RTM_GETSTATS dump (Linux) through the
# netlink engine, with the links' names, flags and MTUs by ioctl, or an
# RTM_GETLINK dump where the kernel lacks RTM_GETSTATS; and the decoder of
# link messages, which also decodes captured dumps on every platform.  Every length read from the buffer is checked
# against what remains of it.

from libc.errno cimport errno, EINVAL, ENODEV, EOPNOTSUPP
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from libc.string cimport memchr, memcpy, strlen

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
    RTNL_DUMP_ATTEMPTS = 5


cdef object _link_stats64_struct(const unsigned char *payload, size_t length):
    cdef uint64_t stats[32]
    cdef int i, present = sd_link_stats64_read(payload, length, stats)
    if present < 0:
        raise ValueError(
            f"rtnl_link_stats64 of {length} bytes: every kernel sends at least "
            f"{SD_LINK_STATS64_MIN_FIELDS * 8}")
    instance = LINK_STATS64.new()
    for i in range(present):
        LINK_STATS64.put(instance, i, stats[i])
    return instance


def decode_link_stats64(const unsigned char[::1] buf not None):
    """Decode an IFLA_STATS64 payload (struct rtnl_link_stats64) into a LinkStats64."""
    if buf.shape[0] == 0:
        raise ValueError("rtnl_link_stats64 buffer is empty")
    return _link_stats64_struct(&buf[0], buf.shape[0])


cdef int _link_message(object out, const unsigned char *body, size_t length) except -1:
    """nl_handler: one RTM_NEWLINK body (ifinfomsg + attributes) into out[name]."""
    cdef sd_ifinfomsg info
    cdef size_t offset = SD_IFINFOMSG_LEN
    cdef size_t payload_length
    cdef const unsigned char *payload
    cdef const unsigned char *nul
    cdef uint32_t mtu
    cdef uint64_t stats[32]
    cdef uint16_t type_
    if length < SD_IFINFOMSG_LEN:
        raise ValueError(f"RTM_NEWLINK body of {length} bytes, shorter than ifinfomsg")
    memcpy(&info, body, SD_IFINFOMSG_LEN)
    instance = INTERFACE_COUNTERS.new()
    name = None
    INTERFACE_COUNTERS.put(instance, IC_INDEX, info.ifi_index)
    INTERFACE_COUNTERS.put(instance, IC_IS_UP, bool(info.ifi_flags & SD_IFF_UP))
    while nl_attribute_next(body, length, &offset, &type_, &payload, &payload_length):
        if type_ == SD_IFLA_IFNAME:
            nul = <const unsigned char *>memchr(payload, 0, payload_length)
            if nul != NULL:
                payload_length = nul - payload
            if payload_length == 0:
                raise ValueError("IFLA_IFNAME is empty")
            name = PyUnicode_DecodeFSDefaultAndSize(<const char *>payload, payload_length)
            INTERFACE_COUNTERS.put(instance, IC_NAME, name)
        elif type_ == SD_IFLA_MTU:
            if payload_length < 4:
                raise ValueError(f"IFLA_MTU of {payload_length} bytes")
            memcpy(&mtu, payload, 4)
            INTERFACE_COUNTERS.put(instance, IC_MTU, mtu)
        elif type_ == SD_IFLA_STATS64:
            if sd_link_stats64_read(payload, payload_length, stats) < 0:
                raise ValueError(f"IFLA_STATS64 of {payload_length} bytes")
            INTERFACE_COUNTERS.put(instance, IC_RX_BYTES, stats[SD_STATS_RX_BYTES])
            INTERFACE_COUNTERS.put(instance, IC_TX_BYTES, stats[SD_STATS_TX_BYTES])
            INTERFACE_COUNTERS.put(instance, IC_RX_PACKETS, stats[SD_STATS_RX_PACKETS])
            INTERFACE_COUNTERS.put(instance, IC_TX_PACKETS, stats[SD_STATS_TX_PACKETS])
            INTERFACE_COUNTERS.put(instance, IC_RX_ERRORS, stats[SD_STATS_RX_ERRORS])
            INTERFACE_COUNTERS.put(instance, IC_TX_ERRORS, stats[SD_STATS_TX_ERRORS])
            INTERFACE_COUNTERS.put(instance, IC_RX_DROPS, stats[SD_STATS_RX_DROPPED])
            INTERFACE_COUNTERS.put(instance, IC_TX_DROPS, stats[SD_STATS_TX_DROPPED])
    if name is None:
        raise ValueError(f"link message for index {info.ifi_index} without IFLA_IFNAME")
    (<dict>out)[name] = instance
    return 0


def decode_rtnl_link_dump(const unsigned char[::1] buf not None):
    """Decode a whole RTM_GETLINK dump (the datagrams concatenated) to {name: InterfaceCounters}.

    ValueError when it is malformed, does not end in NLMSG_DONE, carries an
    NLMSG_ERROR or was interrupted (NLM_F_DUMP_INTR: not one snapshot).
    """
    cdef dict out = {}
    cdef int flags = 0
    if buf.shape[0] > 0:
        try:
            flags = nl_walk(&buf[0], buf.shape[0], SD_RTM_NEWLINK, _link_message, out, True)
        except OSError as err:
            raise ValueError(f"the dump carries a netlink error: {os.strerror(err.errno)}") from None
    if not flags & NL_DONE:
        raise ValueError("the dump does not end in NLMSG_DONE")
    if flags & NL_INTERRUPTED:
        raise ValueError("the dump was interrupted (NLM_F_DUMP_INTR): not one snapshot")
    return out


cdef int _stats_message(object out, const unsigned char *body, size_t length) except -1:
    """nl_handler: one RTM_NEWSTATS body (if_stats_msg + IFLA_STATS_LINK_64)
    appended to out as (index, rx_bytes, tx_bytes, rx_packets, tx_packets,
    rx_errors, tx_errors, rx_drops, tx_drops)."""
    cdef sd_if_stats_msg header
    cdef size_t offset = SD_IF_STATS_MSG_LEN
    cdef size_t payload_length
    cdef const unsigned char *payload
    cdef uint64_t stats[32]
    cdef uint16_t type_
    if length < SD_IF_STATS_MSG_LEN:
        raise ValueError(f"RTM_NEWSTATS body of {length} bytes, shorter than if_stats_msg")
    memcpy(&header, body, SD_IF_STATS_MSG_LEN)
    while nl_attribute_next(body, length, &offset, &type_, &payload, &payload_length):
        if type_ == SD_IFLA_STATS_LINK_64:
            if sd_link_stats64_read(payload, payload_length, stats) < 0:
                raise ValueError(f"IFLA_STATS_LINK_64 of {payload_length} bytes")
            (<list>out).append((header.ifindex,
                                stats[SD_STATS_RX_BYTES], stats[SD_STATS_TX_BYTES],
                                stats[SD_STATS_RX_PACKETS], stats[SD_STATS_TX_PACKETS],
                                stats[SD_STATS_RX_ERRORS], stats[SD_STATS_TX_ERRORS],
                                stats[SD_STATS_RX_DROPPED], stats[SD_STATS_TX_DROPPED]))
            return 0
    raise ValueError(f"RTM_NEWSTATS for index {header.ifindex} without IFLA_STATS_LINK_64")


cdef dict _interfaces_from_stats(int fd, int attempts):
    """The RTM_GETSTATS dump, each link's name, flags and MTU then asked by
    ioctl on the same socket.  A link gone before its ioctl (a veth pair
    deleted between the two) makes the result no snapshot: dumped again, up
    to attempts in all; after the last, the links gone are left out."""
    cdef sd_getstats_request request
    cdef list found
    cdef dict out
    cdef char name[64]
    cdef unsigned flags, mtu
    cdef Py_ssize_t i
    cdef int attempt
    cdef bint gone
    sd_rtnl_getstats_request(&request)
    for attempt in range(attempts):
        found = []
        out = {}
        gone = False
        nl_dump(fd, &request, sizeof(request), SD_RTM_NEWSTATS, _stats_message, found, NULL,
                attempts, False)
        for counters in found:
            if sd_link_identity(fd, (<tuple>counters)[0], name, &flags, &mtu) != 0:
                if errno != ENODEV:
                    raise OSError(errno, os.strerror(errno), None, None, "ioctl(SIOCGIFNAME)")
                gone = True
                continue
            text = PyUnicode_DecodeFSDefaultAndSize(name, strlen(name))
            instance = INTERFACE_COUNTERS.new()
            INTERFACE_COUNTERS.put(instance, IC_NAME, text)
            INTERFACE_COUNTERS.put(instance, IC_INDEX, (<tuple>counters)[0])
            INTERFACE_COUNTERS.put(instance, IC_IS_UP, bool(flags & SD_IFF_UP))
            INTERFACE_COUNTERS.put(instance, IC_MTU, mtu)
            for i in range(8):
                INTERFACE_COUNTERS.put(instance, IC_RX_BYTES + i, (<tuple>counters)[1 + i])
            out[text] = instance
        if not gone:
            break
    return out


# RTM_GETSTATS is tried once; a kernel without it (before 4.7) gets link dumps.
cdef bint _STATS_DUMP_REFUSED = False


def rtnl_interfaces(int attempts=RTNL_DUMP_ATTEMPTS, bint link_dump=False, int pid=0):
    """Counters of every link of pid's network namespace (0: the caller's),
    {name: InterfaceCounters}.

    One RTM_GETSTATS dump of the 64-bit counters, each link's name, flags and
    MTU then asked by ioctl (a link dump fills every link's whole
    configuration: five times the kernel's work); one RTM_GETLINK dump on a
    kernel without RTM_GETSTATS, or with link_dump.  Dumps again, up to
    attempts in all, while links change mid-dump.  Raises OSError for a failed call (ENOSYS off
    Linux; EAGAIN when every attempt was interrupted; EPERM with filename
    /proc/<pid>/ns/net: entering another namespace needs CAP_SYS_ADMIN) and
    ValueError for a malformed reply.
    """
    global _STATS_DUMP_REFUSED
    cdef sd_getlink_request request
    cdef dict out = {}
    cdef int fd = sd_netlink_socket_of(SD_NETLINK_ROUTE, pid)
    if fd < 0:
        if pid:
            raise OSError(errno, os.strerror(errno), f"/proc/{pid}/ns/net")
        raise OSError(errno, os.strerror(errno), None, None, "socket(NETLINK_ROUTE)")
    try:
        if not (link_dump or _STATS_DUMP_REFUSED):
            try:
                return _interfaces_from_stats(fd, attempts)
            except OSError as err:
                if err.errno not in (EOPNOTSUPP, EINVAL):
                    raise
                _STATS_DUMP_REFUSED = True
        sd_rtnl_getlink_request(&request)
        nl_dump(fd, &request, sizeof(request), SD_RTM_NEWLINK, _link_message, out, NULL, attempts, False)
    finally:
        close(fd)
    return out
