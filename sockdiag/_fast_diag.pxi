# Every socket of a process, from outside it (Linux sock_diag): TCP and UDP
# through inet_diag, UNIX through unix_diag.
#
# The process's sockets are found by scanning /proc/<pid>/fd for links
# "socket:[INODE]" (in C, into a hash set); one SOCK_DIAG_BY_FAMILY dump per
# address family and kind then returns every socket of the system, and only
# the messages whose inode is in the set become SocketInfo structs.  The scan runs on a
# thread of its own while the dumps are received; they are decoded once the
# scan is done.  tcp_info is decoded by the same routine as tcp_info(), so
# both views agree field for field.

from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.errno cimport errno, ENOBUFS, ENOSYS, ESRCH
from libc.stdio cimport snprintf
from libc.stdlib cimport free, malloc, realloc
from libc.math cimport isfinite
from libc.string cimport memcmp, memcpy, memset, strlen
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from .includes.netlink cimport *
from .includes.diag cimport *

from ._common import SocketInfo


cdef extern from "Python.h":
    void PyObject_GC_UnTrack(object socket_info)


cdef _Layout SOCKET_INFO = _Layout(SocketInfo, SocketInfo._fields)
cdef Py_ssize_t SI_FD = SOCKET_INFO.index["fd"]
cdef Py_ssize_t SI_INODE = SOCKET_INFO.index["inode"]
cdef Py_ssize_t SI_FAMILY = SOCKET_INFO.index["family"]
cdef Py_ssize_t SI_LOCAL_ADDRESS = SOCKET_INFO.index["local_address"]
cdef Py_ssize_t SI_LOCAL_PORT = SOCKET_INFO.index["local_port"]
cdef Py_ssize_t SI_REMOTE_ADDRESS = SOCKET_INFO.index["remote_address"]
cdef Py_ssize_t SI_REMOTE_PORT = SOCKET_INFO.index["remote_port"]
cdef Py_ssize_t SI_STATE = SOCKET_INFO.index["state"]
cdef Py_ssize_t SI_SEND_QUEUE = SOCKET_INFO.index["send_queue"]
cdef Py_ssize_t SI_UNACKED = SOCKET_INFO.index["unacked"]
cdef Py_ssize_t SI_UNSENT = SOCKET_INFO.index["unsent"]
cdef Py_ssize_t SI_FREE = SOCKET_INFO.index["free"]
cdef Py_ssize_t SI_SNDBUF = SOCKET_INFO.index["sndbuf"]
cdef Py_ssize_t SI_RECV_QUEUE = SOCKET_INFO.index["recv_queue"]
cdef Py_ssize_t SI_QUEUE_DELAY = SOCKET_INFO.index["queue_delay_s"]
cdef Py_ssize_t SI_CONGESTION = SOCKET_INFO.index["congestion"]
cdef Py_ssize_t SI_TCP = SOCKET_INFO.index["tcp"]
cdef Py_ssize_t SI_LIMITED_BY = SOCKET_INFO.index["limited_by"]
cdef Py_ssize_t SI_QUEUE_DELAY_BASIS = SOCKET_INFO.index["queue_delay_basis"]
cdef Py_ssize_t SI_STALLED = SOCKET_INFO.index["stalled_s"]
cdef Py_ssize_t SI_KIND = SOCKET_INFO.index["kind"]
cdef Py_ssize_t SI_SOCKET_TYPE = SOCKET_INFO.index["socket_type"]
cdef Py_ssize_t SI_RCVBUF = SOCKET_INFO.index["rcvbuf"]
cdef Py_ssize_t SI_DROPS = SOCKET_INFO.index["drops"]
cdef Py_ssize_t SI_BACKLOG_LIMIT = SOCKET_INFO.index["backlog_limit"]
cdef Py_ssize_t SI_PEER_INODE = SOCKET_INFO.index["peer_inode"]

# The kinds mask: bit i is _common.SOCKET_KINDS[i].  Each kind's dump is kept
# in a buffer of its own (KIND_SLOTS, indexed by the bit's number): an
# inet_diag_msg does not say whether it is TCP or UDP.
cdef enum:
    KIND_TCP = 1
    KIND_UDP = 2
    KIND_UNIX = 4
    KIND_SLOTS = 3

cdef enum:
    # Dumps taken again while the kernel marks them interrupted; the last
    # one is kept (a busy host's table may never hold still).
    DIAG_DUMP_ATTEMPTS = 3

# The attributes asked for with each socket: bit (attribute - 1) of idiag_ext.
cdef uint8_t DIAG_EXT = ((1 << (SD_INET_DIAG_INFO - 1)) | (1 << (SD_INET_DIAG_CONG - 1))
                         | (1 << (SD_INET_DIAG_SKMEMINFO - 1)))
# UDP has neither tcp_info nor congestion control.
cdef uint8_t UDP_DIAG_EXT = 1 << (SD_INET_DIAG_SKMEMINFO - 1)


cdef int diag_parse(const unsigned char *payload, size_t length, sd_diag_message *m) except -1:
    """The one inet_diag_msg parser (includes/diag.h), its errors raised as ValueError."""
    cdef int status = sd_diag_parse(payload, length, m)
    if status == SD_DIAG_OK:
        return 0
    if status == SD_DIAG_SHORT:
        raise ValueError(f"sock_diag message of {length} bytes: shorter than inet_diag_msg")
    if status == SD_DIAG_FAMILY:
        raise ValueError(f"sock_diag message of address family {m.msg.idiag_family}")
    _raise_attribute_error(status, payload, length, m.attribute_offset)


cdef int diag_dump(int nl, uint8_t family, uint8_t protocol, uint32_t states, uint8_t ext,
                   object bytecode, nl_handler handler, object out, nl_buffer *kept) except -1:
    """One sock_diag dump of family's sockets of protocol (IPPROTO_TCP or
    IPPROTO_UDP) through the netlink engine, filtered in the kernel by
    bytecode (inet_diag bytecode, as `ss` compiles its filter) when it is
    not None."""
    cdef const unsigned char[::1] code
    cdef const unsigned char *code_data = NULL
    cdef size_t code_length = 0
    if bytecode is not None:
        code = bytecode
        code_length = code.shape[0]
        if code_length > 0xFFFF - 4:
            raise ValueError(f"inet_diag bytecode of {code_length} bytes: an attribute holds at most 65531")
        if code_length:
            code_data = &code[0]
    cdef unsigned char *request = <unsigned char *>malloc(SD_DIAG_REQUEST_SIZE(code_length))
    if request == NULL:
        raise MemoryError()
    try:
        return nl_dump(nl, request, sd_diag_request(request, family, protocol, states, ext, code_data, code_length),
                       SD_SOCK_DIAG_BY_FAMILY, handler, out, kept, DIAG_DUMP_ATTEMPTS, True)
    finally:
        free(request)


cdef int unix_dump(int nl, uint32_t states, nl_buffer *kept) except -1:
    """One unix_diag dump of the UNIX sockets in the states of the bitmask,
    with their name, peer, queues and memory, kept in kept."""
    cdef unsigned char request[SD_UNIX_REQUEST_SIZE]
    return nl_dump(nl, request, sd_unix_request(request, states, 0, 0), SD_SOCK_DIAG_BY_FAMILY,
                   NULL, None, kept, DIAG_DUMP_ATTEMPTS, True)


cdef int kind_dumps(int nl, int kinds, uint32_t states, object bytecode, nl_buffer *dumps) except -1:
    """The dumps of the kinds asked for, into dumps[kind's bit number],
    those already taken (a buffer not empty) skipped.  bytecode filters
    TCP and UDP (UNIX sockets have no such filter: ValueError)."""
    if kinds & KIND_UNIX and bytecode is not None:
        raise ValueError("an inet_diag filter cannot select UNIX sockets")
    if kinds & KIND_TCP and dumps[0].length == 0:
        diag_dump(nl, AF_INET, IPPROTO_TCP, states, DIAG_EXT, bytecode, NULL, None, &dumps[0])
        diag_dump(nl, AF_INET6, IPPROTO_TCP, states, DIAG_EXT, bytecode, NULL, None, &dumps[0])
    if kinds & KIND_UDP and dumps[1].length == 0:
        diag_dump(nl, AF_INET, IPPROTO_UDP, states, UDP_DIAG_EXT, bytecode, NULL, None, &dumps[1])
        diag_dump(nl, AF_INET6, IPPROTO_UDP, states, UDP_DIAG_EXT, bytecode, NULL, None, &dumps[1])
    if kinds & KIND_UNIX and dumps[2].length == 0:
        unix_dump(nl, states, &dumps[2])
    return 0


cdef void free_dumps(nl_buffer *dumps) noexcept:
    cdef int i
    for i in range(KIND_SLOTS):
        free(dumps[i].data)
        dumps[i].data = NULL
        dumps[i].length = dumps[i].capacity = 0


# Addresses and congestion names repeat (a server's local address, a
# client's peer): the last text made is reused while the bytes are the same.
cdef class _TextMemo:
    cdef uint8_t family
    cdef unsigned char raw[16]
    cdef size_t length
    cdef object text

    cdef object address(self, uint8_t family, const uint32_t *address):
        """inet_ntop of a sock_diag address."""
        cdef char text[64]
        cdef size_t size = 4 if family == SD_LINUX_AF_INET else 16
        if self.text is not None and self.family == family and memcmp(self.raw, address, size) == 0:
            return self.text
        if inet_ntop(AF_INET if family == SD_LINUX_AF_INET else AF_INET6, address, text, sizeof(text)) == NULL:
            raise ValueError("unprintable address")
        self.text = text.decode("ascii")
        self.family = family
        memcpy(self.raw, address, size)
        return self.text

    cdef object name(self, const unsigned char *data, size_t length):
        """A NUL-terminated name of at most 16 bytes (INET_DIAG_CONG)."""
        cdef size_t n = 0
        while n < length and n < 16 and data[n] != 0:
            n += 1
        if self.text is not None and self.length == n and memcmp(self.raw, data, n) == 0:
            return self.text
        self.text = (<const char *>data)[:n].decode("ascii", "replace")
        self.length = n
        memcpy(self.raw, data, n)
        return self.text


cdef _TextMemo _LOCAL_ADDRESS = _TextMemo()
cdef _TextMemo _REMOTE_ADDRESS = _TextMemo()
cdef _TextMemo _CONGESTION = _TextMemo()


cdef inline object diag_family_name(const sd_diag_message *m):
    return "IPv4" if m.msg.idiag_family == SD_LINUX_AF_INET else "IPv6"


cdef int _put_memory(object socket_info, const unsigned char *meminfo, size_t length, size_t charged,
                     bint with_free) except -1:
    """sndbuf, rcvbuf and drops from an sk_meminfo payload (NULL: none) and,
    with_free, free: sndbuf less the memory at index charged (the one the
    kernel compares with sndbuf to block a writer)."""
    cdef uint64_t sndbuf = sd_meminfo_value(meminfo, length, SD_MEMINFO_SNDBUF)
    cdef uint64_t used = sd_meminfo_value(meminfo, length, charged)
    cdef uint64_t value
    if used != SD_FIELD_ABSENT:
        SOCKET_INFO.put(socket_info, SI_SNDBUF, sndbuf)
        if with_free:
            SOCKET_INFO.put(socket_info, SI_FREE, sndbuf - used if sndbuf > used else 0)
        SOCKET_INFO.put(socket_info, SI_RCVBUF, sd_meminfo_value(meminfo, length, SD_MEMINFO_RCVBUF))
    value = sd_meminfo_value(meminfo, length, SD_MEMINFO_DROPS)  # Linux 4.8+
    if value != SD_FIELD_ABSENT:
        SOCKET_INFO.put(socket_info, SI_DROPS, value)
    return 0


cdef object _socket_info(const sd_diag_message *m, object fd, int kind):
    """The SocketInfo of an inet_diag_msg of kind KIND_TCP or KIND_UDP."""
    cdef bint listening = m.msg.idiag_state == SD_TCP_LISTEN
    cdef uint64_t notsent = sd_diag_info_field(m, SD_TCPI_NOTSENT_OFFSET, 4)
    cdef uint64_t sndbuf = sd_diag_meminfo(m, SD_MEMINFO_SNDBUF)
    cdef uint64_t wmem_queued = sd_diag_meminfo(m, SD_MEMINFO_WMEM_QUEUED)
    cdef long unacked
    cdef sd_drain drain
    socket_info = SOCKET_INFO.new()
    # A SocketInfo holds only numbers, strings and a TcpInfo of numbers and
    # strings: it cannot be part of a reference cycle.  Left to the cyclic GC,
    # tens of thousands of them would be traversed by every collection (a
    # fifth of the time of a 19,000-socket call, and again in each later
    # full collection of a program that keeps them).
    PyObject_GC_UnTrack(socket_info)
    SOCKET_INFO.put(socket_info, SI_FD, fd)
    SOCKET_INFO.put(socket_info, SI_INODE, m.msg.idiag_inode)
    SOCKET_INFO.put(socket_info, SI_FAMILY, diag_family_name(m))
    SOCKET_INFO.put(socket_info, SI_LOCAL_ADDRESS, _LOCAL_ADDRESS.address(m.msg.idiag_family, m.msg.id.idiag_src))
    SOCKET_INFO.put(socket_info, SI_LOCAL_PORT, ntohs(m.msg.id.idiag_sport))
    SOCKET_INFO.put(socket_info, SI_REMOTE_ADDRESS, _REMOTE_ADDRESS.address(m.msg.idiag_family, m.msg.id.idiag_dst))
    SOCKET_INFO.put(socket_info, SI_REMOTE_PORT, ntohs(m.msg.id.idiag_dport))
    SOCKET_INFO.put(socket_info, SI_STATE, _name(TCP_STATES, m.msg.idiag_state))
    # For a listening socket rqueue is the accept queue and wqueue its limit.
    SOCKET_INFO.put(socket_info, SI_RECV_QUEUE, m.msg.idiag_rqueue)
    if kind == KIND_UDP:
        # udp_diag: rqueue and wqueue are /proc/net/udp's rx_queue and tx_queue.
        SOCKET_INFO.put(socket_info, SI_KIND, "udp")
        SOCKET_INFO.put(socket_info, SI_SOCKET_TYPE, "dgram")
        SOCKET_INFO.put(socket_info, SI_SEND_QUEUE, m.msg.idiag_wqueue)
        _put_memory(socket_info, m.meminfo, m.meminfo_length, SD_MEMINFO_WMEM_ALLOC, True)
        return socket_info
    SOCKET_INFO.put(socket_info, SI_KIND, "tcp")
    SOCKET_INFO.put(socket_info, SI_SOCKET_TYPE, "stream")
    _put_memory(socket_info, m.meminfo, m.meminfo_length, SD_MEMINFO_WMEM_QUEUED, True)
    if listening:
        SOCKET_INFO.put(socket_info, SI_BACKLOG_LIMIT, m.msg.idiag_wqueue)
    if m.info != NULL:
        tcp = _decode_linux_tcp_info(m.info, m.info_length)
        PyObject_GC_UnTrack(tcp)
        SOCKET_INFO.put(socket_info, SI_TCP, tcp)
    if m.cong != NULL:
        SOCKET_INFO.put(socket_info, SI_CONGESTION, _CONGESTION.name(m.cong, m.cong_length))
    if not listening:
        SOCKET_INFO.put(socket_info, SI_SEND_QUEUE, m.msg.idiag_wqueue)
        if notsent != SD_FIELD_ABSENT:
            # wqueue and tcp_info are not read under one lock: clamp.
            unacked = <long>m.msg.idiag_wqueue - <long>notsent
            SOCKET_INFO.put(socket_info, SI_UNACKED, unacked if unacked > 0 else 0)
            SOCKET_INFO.put(socket_info, SI_UNSENT, notsent)
            drain = sd_snapshot_drain(notsent, unacked if unacked > 0 else 0,
                                      sndbuf - wmem_queued if wmem_queued == SD_FIELD_ABSENT or sndbuf > wmem_queued
                                      else 0, m.info, m.info_length)
            put_drain(SOCKET_INFO, socket_info, SI_QUEUE_DELAY, SI_LIMITED_BY, SI_QUEUE_DELAY_BASIS, SI_STALLED, &drain)
    return socket_info


def socket_with_drain(object socket_info, object queue_delay_s, object queue_delay_basis, object limited_by,
                      object stalled_s):
    """A copy of the SocketInfo with its drain fields set (sockdiag.drain),
    untracked by the cyclic GC like every struct the dump makes."""
    if type(socket_info) is not SocketInfo:
        raise TypeError("a SocketInfo")
    copy = SOCKET_INFO.copy(socket_info)
    PyObject_GC_UnTrack(copy)
    SOCKET_INFO.put(copy, SI_QUEUE_DELAY, queue_delay_s)
    SOCKET_INFO.put(copy, SI_QUEUE_DELAY_BASIS, queue_delay_basis)
    SOCKET_INFO.put(copy, SI_LIMITED_BY, limited_by)
    SOCKET_INFO.put(copy, SI_STALLED, stalled_s)
    return copy


cdef object _unix_path(const sd_unix_message *m):
    """A UNIX socket's name as text: the path up to its first NUL, "@" and
    the rest for an abstract name (a NUL first), None when unnamed; bytes
    that are not UTF-8 escaped (\\xNN), never an error."""
    cdef size_t n = 0
    if m.name == NULL or m.name_length == 0:
        return None
    if m.name[0] == 0:
        return "@" + (<const char *>m.name)[1:m.name_length].decode("utf-8", "backslashreplace")
    while n < m.name_length and m.name[n] != 0:
        n += 1
    return (<const char *>m.name)[:n].decode("utf-8", "backslashreplace")


cdef object _unix_socket_info(const sd_unix_message *m, object fd):
    cdef bint listening = m.msg.udiag_state == SD_TCP_LISTEN
    socket_info = SOCKET_INFO.new()
    PyObject_GC_UnTrack(socket_info)  # numbers and strings only (see _socket_info)
    SOCKET_INFO.put(socket_info, SI_FD, fd)
    SOCKET_INFO.put(socket_info, SI_INODE, m.msg.udiag_ino)
    SOCKET_INFO.put(socket_info, SI_FAMILY, "UNIX")
    SOCKET_INFO.put(socket_info, SI_KIND, "unix")
    SOCKET_INFO.put(socket_info, SI_SOCKET_TYPE, _name(SOCKET_TYPES, m.msg.udiag_type))
    SOCKET_INFO.put(socket_info, SI_LOCAL_ADDRESS, _unix_path(m))
    SOCKET_INFO.put(socket_info, SI_STATE, _name(TCP_STATES, m.msg.udiag_state))
    if m.peer != SD_FIELD_ABSENT and m.peer != 0:  # 0: a peer not yet accepted has no inode
        SOCKET_INFO.put(socket_info, SI_PEER_INODE, m.peer)
    if m.rqueue != SD_FIELD_ABSENT:
        # A listener's rqueue is its backlog, its wqueue the limit.
        SOCKET_INFO.put(socket_info, SI_RECV_QUEUE, m.rqueue)
        SOCKET_INFO.put(socket_info, SI_BACKLOG_LIMIT if listening else SI_SEND_QUEUE, m.wqueue)
    _put_memory(socket_info, m.meminfo, m.meminfo_length, SD_MEMINFO_WMEM_ALLOC, not listening)
    return socket_info


cdef int unix_parse(const unsigned char *payload, size_t length, sd_unix_message *m) except -1:
    """The one unix_diag_msg parser (includes/diag.h), its errors raised as ValueError."""
    cdef int status = sd_unix_parse(payload, length, m)
    if status == SD_DIAG_OK:
        return 0
    if status == SD_UNIX_DIAG_SHORT:
        raise ValueError(f"unix_diag message of {length} bytes: shorter than unix_diag_msg")
    _raise_attribute_error(status, payload, length, m.attribute_offset)


cdef class _WantedSockets:
    """The handler's state when decoding for process_sockets: the wanted
    inodes (NULL: every socket), the structs made, the states kept (0: the
    kernel filtered them), the kind of an inet_diag message (KIND_TCP or
    KIND_UDP: the message does not say) and, when names is a dict, the name
    of each wanted socket found (for exact requests later).  A unix_diag
    message says its family: it is decoded as such whatever kind is."""
    cdef sd_inode_set *wanted
    cdef list socket_infos
    cdef uint32_t states
    cdef dict names
    cdef int kind


cdef int _socket_message(object out, const unsigned char *payload, size_t length) except -1:
    """nl_handler: a SocketInfo for each wanted socket of the dump."""
    cdef _WantedSockets state = <_WantedSockets>out
    cdef sd_inode_slot *slot = NULL
    cdef sd_diag_message m
    cdef sd_unix_message u
    cdef unsigned char name[SD_DIAG_NAME_MAX]
    if length and payload[0] == SD_LINUX_AF_UNIX:
        if state.wanted != NULL:
            if length < sizeof(sd_unix_diag_msg):
                raise ValueError(f"unix_diag message of {length} bytes: shorter than unix_diag_msg")
            slot = sd_inode_set_find(state.wanted, sd_read_uint(payload + SD_UNIX_INODE_OFFSET, 4))
            if slot == NULL or slot.seen:
                return 0
            slot.seen = 1
        unix_parse(payload, length, &u)
        if state.states and not (state.states >> u.msg.udiag_state) & 1:
            return 0
        state.socket_infos.append(_unix_socket_info(&u, None if slot == NULL else slot.fd))
        return 0
    if state.wanted != NULL:
        if length < sizeof(sd_inet_diag_msg):
            raise ValueError(f"sock_diag message of {length} bytes: shorter than inet_diag_msg")
        # Most of a system's sockets are not the process's: skip them unparsed.
        slot = sd_inode_set_find(state.wanted, sd_read_uint(payload + SD_DIAG_INODE_OFFSET, 4))
        if slot == NULL or slot.seen:
            return 0
        slot.seen = 1
    diag_parse(payload, length, &m)
    if state.states and not (state.states >> m.msg.idiag_state) & 1:
        return 0
    if state.names is not None:
        sd_diag_name(payload, name)
        state.names[m.msg.idiag_inode] = (<char *>name)[:SD_DIAG_NAME_SIZE]
    state.socket_infos.append(_socket_info(&m, None if slot == NULL else slot.fd, state.kind))
    return 0


cdef list _decode_sockets(const unsigned char *buf, size_t length, sd_inode_set *wanted,
                          uint32_t states=0, dict names=None, int kind=KIND_TCP, list socket_infos=None):
    """The SocketInfo structs of the wanted sockets of buf, appended to socket_infos (None: a new list)."""
    cdef _WantedSockets state = _WantedSockets()
    state.wanted = wanted
    state.socket_infos = [] if socket_infos is None else socket_infos
    state.states = states
    state.names = names
    state.kind = kind
    if length:
        nl_walk(buf, length, SD_SOCK_DIAG_BY_FAMILY, _socket_message, state, False)
    return state.socket_infos


def decode_inet_diag_dump(const unsigned char[::1] buf not None, dict fds=None, str kind="tcp"):
    """Decode the bytes of a NETLINK_SOCK_DIAG dump: a list of SocketInfo.

    buf holds whole netlink messages (one or more recv batches, NLMSG_DONE
    included or not).  kind: what its inet_diag messages are, "tcp" or
    "udp"; unix_diag messages are decoded as UNIX sockets whatever kind.
    fds maps socket inode -> fd: only those sockets become SocketInfo structs, with
    their fd; None decodes every socket, with fd None.  ValueError for
    malformed input; OSError for a kernel NLMSG_ERROR.
    """
    cdef sd_inode_set wanted
    cdef int kind_bit
    if kind == "tcp":
        kind_bit = KIND_TCP
    elif kind == "udp":
        kind_bit = KIND_UDP
    else:
        raise ValueError(f"an inet_diag dump is of TCP or UDP sockets, not {kind!r}")
    if fds is None:
        return _decode_sockets(&buf[0] if buf.shape[0] else NULL, buf.shape[0], NULL, 0, None, kind_bit)
    if sd_inode_set_init(&wanted, len(fds)) != 0:
        raise MemoryError()
    try:
        for inode, fd in fds.items():
            if inode:
                sd_inode_set_add(&wanted, inode, fd)
        return _decode_sockets(&buf[0] if buf.shape[0] else NULL, buf.shape[0], &wanted, 0, None, kind_bit)
    finally:
        sd_inode_set_free(&wanted)


cdef enum:
    # Exact requests are used while the sockets asked for are at most this
    # share of the namespace's (1/EXACT_SHARE): measured here, one exact
    # request costs the kernel and us about as much as EXACT_SHARE sockets of
    # a dump (docs/perf.md, "Scale").
    EXACT_SHARE = 4
    # Names kept at most; beyond, they are forgotten and learnt again.
    KNOWN_NAMES_MAX = 1 << 18
    # Cgroup passes (per cgroup and network namespace) kept at most; beyond,
    # they are forgotten and each cgroup takes a full pass again.
    CGROUP_PASSES_MAX = 64


# A cgroup's full pass (the kernel-filtered dump) runs at least this often: it
# finds what a refresh by name cannot (a socket made in the cgroup but held
# outside it, a held socket connected since the last pass).
cdef double FULL_PASS_INTERVAL_S = 10.0


cdef inline double _monotonic_s() noexcept:
    """CLOCK_MONOTONIC (time.monotonic()'s clock), in seconds."""
    cdef timespec now
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec + now.tv_nsec * 1e-9


cdef class _CgroupPass:
    """What the last full pass of a cgroup in a network namespace found: the
    names of its TCP sockets (inode -> name), the sockets its processes held
    that are not the cgroup's (made elsewhere, or in no table), and when."""
    cdef dict names
    cdef set foreign
    cdef double monotonic_s


cdef class KnownSockets:
    """What earlier passes learnt, so that a refresh can ask the kernel for the
    watched sockets by name instead of dumping every socket of the machine.

    Holds the name (family and inet_diag_sockid, cookie included) of the
    TCP sockets of small processes, the inodes of their UNIX and UDP sockets
    (a UNIX socket is asked for by inode; UDP has no exact request, its
    table is dumped), the pids whose last pass was small enough for exact
    requests, the number of sockets of the last dump, and, per cgroup and
    network namespace, what its last full pass found.  Nothing of another
    process is held: numbers only.
    """
    cdef dict names  # inode -> SD_DIAG_NAME_SIZE bytes
    cdef set unix_inodes
    cdef set udp_inodes
    cdef set small_pids
    cdef dict cgroup_passes  # (cgroup id, namespace inode) -> _CgroupPass
    cdef readonly size_t dumped_sockets
    cdef readonly size_t exact_passes  # passes answered by exact requests alone
    cdef readonly size_t dump_passes

    def __cinit__(self):
        self.names = {}
        self.unix_inodes = set()
        self.udp_inodes = set()
        self.small_pids = set()
        self.cgroup_passes = {}

    cdef object cgroup_names(self, tuple key, set held):
        """The names to ask the kernel for a cgroup's sockets in a namespace
        (key) by, or None for a full pass: none ran yet, the last is
        FULL_PASS_INTERVAL_S old, or the cgroup's processes hold a socket
        (held: inodes) it did not account for."""
        cdef _CgroupPass last = self.cgroup_passes.get(key)
        if (last is None or _monotonic_s() - last.monotonic_s >= FULL_PASS_INTERVAL_S
                or not held <= last.names.keys() | last.foreign):
            return None
        return last.names.values()

    cdef int remember_cgroup_pass(self, tuple key, dict names, set held) except -1:
        """A full pass of a cgroup in a namespace (key) found the sockets of
        names (inode -> name) while its processes held held."""
        cdef _CgroupPass last = _CgroupPass()
        last.names = names
        last.foreign = held - names.keys()
        last.monotonic_s = _monotonic_s()
        if len(self.cgroup_passes) > CGROUP_PASSES_MAX:
            self.cgroup_passes.clear()
        self.cgroup_passes[key] = last
        self.dump_passes += 1
        return 0

    cdef int forget_closed(self, tuple key, list found) except -1:
        """Keep, of a cgroup's names in a namespace (key), those of the sockets found by them."""
        cdef _CgroupPass last = self.cgroup_passes[key]
        kept = {socket_info.inode for socket_info in found}
        last.names = {inode: name for inode, name in last.names.items() if inode in kept}
        return 0

    cdef int learn_kinds(self, list socket_infos, Py_ssize_t start) except -1:
        """The inodes of the UNIX and UDP sockets among socket_infos[start:]."""
        if len(self.unix_inodes) + len(self.udp_inodes) > KNOWN_NAMES_MAX:
            self.unix_inodes.clear()
            self.udp_inodes.clear()
        for socket_info in socket_infos[start:]:
            kind = socket_info.kind
            if kind == "unix":
                self.unix_inodes.add(socket_info.inode)
            elif kind == "udp":
                self.udp_inodes.add(socket_info.inode)
        return 0

    cdef bint small(self, size_t count):
        """Few enough sockets, against the last dump, for exact requests."""
        return self.dumped_sockets > 0 and count * EXACT_SHARE <= self.dumped_sockets

    cdef dict names_to_learn(self, size_t count, size_t dumped):
        """After a dump of dumped sockets: the dict to add the names of count wanted sockets to, or None."""
        self.dumped_sockets = dumped
        self.dump_passes += 1
        if count * EXACT_SHARE > dumped:
            return None
        if len(self.names) + count > KNOWN_NAMES_MAX:
            self.names.clear()
        return self.names


cdef size_t _dump_messages(const nl_buffer *dump) except? 0:
    """The messages of a dump kept in dump (NLMSG_DONE included): its size in sockets."""
    cdef nl_answers count
    count.answered = 0
    count.missing = 0
    if dump.length:
        nl_walk(dump.data, dump.length, SD_SOCK_DIAG_BY_FAMILY, NULL, None, False, &count)
    return count.answered


cdef uint32_t ALL_STATES = 0xFFFFFFFF
STATE_NUMBERS = {name: number for number, name in enumerate(TCP_STATES) if name}


cdef bint _ask_known(int nl, KnownSockets known, sd_inode_set *wanted, nl_buffer *dumps, int kinds,
                     uint32_t states, list socket_infos) except -1:
    """A pass by exact requests: the UDP and UNIX sockets of the wanted ones
    (of the kinds asked for) appended to socket_infos, and, when True is
    returned, the TCP ones too.  Wanted sockets of unknown kind are asked for
    as UNIX sockets by inode, then looked for in the UDP table, and learnt.
    False (dumps[0] emptied) when a TCP socket is unknown, or the kernel has
    nothing by its name (closed, or unhashed: not yet connected, or reset),
    so that only a dump can tell; its UDP and UNIX sockets are in socket_infos."""
    cdef size_t i, n_tcp = 0, n_unix = 0, missing = 0, capacity = wanted.mask + 1
    cdef unsigned char *tcp_requests = <unsigned char *>malloc(capacity * SD_DIAG_EXACT_REQUEST_SIZE)
    cdef unsigned char *unix_requests = <unsigned char *>malloc(capacity * SD_UNIX_REQUEST_SIZE)
    cdef const unsigned char *name
    cdef uint64_t inode
    cdef bint udp_wanted = False
    cdef Py_ssize_t start = len(socket_infos)
    cdef list unknown = []
    if tcp_requests == NULL or unix_requests == NULL:
        free(tcp_requests)
        free(unix_requests)
        raise MemoryError()
    try:
        for i in range(capacity):
            inode = wanted.slots[i].inode
            if inode == 0:
                continue
            found = known.names.get(inode)
            if found is not None:
                if kinds & KIND_TCP:
                    name = <bytes>found
                    sd_diag_exact_request(tcp_requests + n_tcp * SD_DIAG_EXACT_REQUEST_SIZE, name,
                                          DIAG_EXT, <uint32_t>n_tcp)
                    n_tcp += 1
            elif inode in known.udp_inodes:
                udp_wanted = True
            else:
                if inode not in known.unix_inodes:
                    unknown.append(inode)  # if it is not a UNIX socket, the answer is ENOENT
                elif not kinds & KIND_UNIX:
                    continue
                sd_unix_request(unix_requests + n_unix * SD_UNIX_REQUEST_SIZE, 0, <uint32_t>inode,
                                <uint32_t>n_unix)
                n_unix += 1
        # Every state is read, so that each socket's kind is learnt; then the
        # kinds and states asked for are kept.
        if n_unix:
            try:
                nl_ask(nl, unix_requests, SD_UNIX_REQUEST_SIZE, n_unix, SD_SOCK_DIAG_BY_FAMILY,
                       &dumps[2], &missing)
            except OSError as err:
                if err.errno != ENOBUFS:
                    raise
                kind_dumps(nl, KIND_UNIX, ALL_STATES, None, dumps)  # answers were lost: the table
            _decode_sockets(dumps[2].data, dumps[2].length, wanted, 0, None, KIND_UNIX, socket_infos)
            known.learn_kinds(socket_infos, start)
        unknown = [inode for inode in unknown if inode not in known.unix_inodes]
        if (udp_wanted and kinds & KIND_UDP) or unknown:
            kind_dumps(nl, KIND_UDP, ALL_STATES, None, dumps)
            _decode_sockets(dumps[1].data, dumps[1].length, wanted, 0, None, KIND_UDP, socket_infos)
            known.learn_kinds(socket_infos, start)
            unknown = [inode for inode in unknown if inode not in known.udp_inodes]
        socket_infos[start:] = [r for r in socket_infos[start:]
                           if ((r.kind == "unix" and kinds & KIND_UNIX) or (r.kind == "udp" and kinds & KIND_UDP))
                           and states >> STATE_NUMBERS.get(r.state, 0) & 1]
        if unknown:
            return False
        if n_tcp:
            missing = 0
            try:
                nl_ask(nl, tcp_requests, SD_DIAG_EXACT_REQUEST_SIZE, n_tcp, SD_SOCK_DIAG_BY_FAMILY,
                       &dumps[0], &missing)
            except OSError as err:
                if err.errno != ENOBUFS:
                    raise
                dumps[0].length = 0
                return False
            if missing:
                dumps[0].length = 0
                return False
            _decode_sockets(dumps[0].data, dumps[0].length, wanted, states, None, KIND_TCP, socket_infos)
        return True
    finally:
        free(tcp_requests)
        free(unix_requests)


def process_state_linux(int pid):
    """The state letter of /proc/<pid>/stat ("R", "S", "T", "Z"…), None
    when there is no such process; OSError when it cannot be read."""
    cdef int state = sd_process_state(pid)
    if state < 0:
        raise OSError(errno, os.strerror(errno), f"/proc/{pid}/stat")
    return chr(state) if state else None


cdef inline bint _state_gone(int state):
    """sd_process_state's answer for a process that is gone, a zombie or dead."""
    return state == 0 or state == ord("Z") or state == ord("X")


cdef object _exit_error(int pid):
    """The OSError telling that pid exited during a pass (ESRCH: gone, a
    zombie or dead), or that its state cannot be read; None while it runs.
    A process exiting during a pass can leave a short list of sockets rather
    than an error (a zombie's fd table is empty): only this check, after
    the pass, tells them apart."""
    cdef int state = sd_process_state(pid)
    cdef int err = errno
    if state < 0:
        return OSError(err, os.strerror(err), f"/proc/{pid}/stat")
    if _state_gone(state):
        return OSError(ESRCH, "the process exited during the pass", f"/proc/{pid}/stat")
    return None


cdef int _raise_if_exited(int pid) except -1:
    error = _exit_error(pid)
    if error is not None:
        raise error
    return 0


cdef list _sockets_of_wanted(int nl, sd_inode_set *wanted, size_t count, uint32_t states,
                             object bytecode, KnownSockets known, nl_buffer *dumps, int kinds):
    """The SocketInfo structs of the wanted sockets (count of them) of the kinds asked
    for: by exact requests when known allows (UDP from a dump of its table),
    else from one dump per family and kind (taken into dumps[kind's bit
    number] unless already there)."""
    cdef dict learn = None
    cdef list socket_infos = []
    cdef nl_buffer *tcp = &dumps[0]
    cdef bint exact = (known is not None and bytecode is None and tcp.length == 0
                       and dumps[1].length == 0 and dumps[2].length == 0 and known.small(count))
    if exact:
        if _ask_known(nl, known, wanted, dumps, kinds, states, socket_infos):
            known.exact_passes += 1
            return socket_infos
        kinds &= KIND_TCP  # the UDP and UNIX sockets are in socket_infos
    if kinds & KIND_TCP:
        kind_dumps(nl, KIND_TCP, states, bytecode, dumps)
        if known is not None and bytecode is None:
            learn = known.names_to_learn(count, _dump_messages(tcp))
        _decode_sockets(tcp.data, tcp.length, wanted, 0, learn, KIND_TCP, socket_infos)
    if exact:
        return socket_infos
    start = len(socket_infos)
    kind_dumps(nl, kinds & ~KIND_TCP, states, bytecode, dumps)
    if kinds & KIND_UDP:
        _decode_sockets(dumps[1].data, dumps[1].length, wanted, 0, None, KIND_UDP, socket_infos)
    if kinds & KIND_UNIX:
        _decode_sockets(dumps[2].data, dumps[2].length, wanted, 0, None, KIND_UNIX, socket_infos)
    if known is not None and known.small(count):
        known.learn_kinds(socket_infos, start)
    return socket_infos


def process_sockets_linux(int pid, uint32_t states, bytecode=None, KnownSockets known=None,
                          int kinds=KIND_TCP):
    """The sockets pid holds of the kinds of the mask (bit i: SOCKET_KINDS[i];
    TCP and UDP over IPv4 and IPv6, UNIX), in the states of the bitmask
    (1 << state number), as SocketInfo structs, seen in pid's network namespace.

    bytecode: an inet_diag filter (bytes, as `ss` compiles one) the kernel
    applies to the dump, or None.  known: a KnownSockets kept between calls:
    once a process is known to hold few of the machine's sockets, its
    sockets are asked for by name (exact requests), and the machine is
    dumped only when its fds hold a socket not seen before.  OSError as the
    kernel gave it (ENOENT: no such process; EACCES: not allowed; EPERM with
    filename /proc/<pid>/ns/net: pid is in another network namespace and
    entering it needs CAP_SYS_ADMIN; ESRCH with filename /proc/<pid>/stat:
    pid exited during the pass, its list may be short; ENOSYS off Linux)."""
    cdef sd_scan scan
    cdef sd_inode_set wanted
    cdef bint has_wanted = False, exact_first
    cdef nl_buffer dumps[KIND_SLOTS]
    cdef int nl = -1, nl_errno = 0, rc
    cdef size_t i
    if not SD_LINUX:
        raise OSError(ENOSYS, "sock_diag exists on Linux only")
    if kinds & KIND_UNIX and bytecode is not None:
        raise ValueError("an inet_diag filter cannot select UNIX sockets")
    memset(dumps, 0, sizeof(dumps))
    # A process small at its last pass is scanned first, for exact requests.
    # Otherwise the fds are scanned on another thread while this one dumps
    # every TCP socket of the namespace; the dump is decoded once the scan is done.
    exact_first = known is not None and bytecode is None and pid in known.small_pids
    with nogil:
        if exact_first:
            memset(&scan, 0, sizeof(scan))
            rc = sd_scan_socket_fds(pid, &scan.sockets, &scan.count)
        else:
            sd_scan_start(&scan, pid)
    try:
        try:
            nl = sd_diag_socket(pid)
            if nl < 0:
                nl_errno = errno
            elif not exact_first:
                kind_dumps(nl, kinds, states, bytecode, dumps)
        finally:
            if not exact_first:
                with nogil:
                    rc = sd_scan_wait(&scan)
            # The scan's error (no such process, not allowed) comes first, as
            # when the scan ran before the dump.
            if rc != 0:
                raise OSError(errno, os.strerror(errno), f"/proc/{pid}/fd")
        if scan.count == 0:
            _raise_if_exited(pid)
            return []
        if nl < 0:
            raise OSError(nl_errno, os.strerror(nl_errno), f"/proc/{pid}/ns/net")
        if sd_inode_set_init(&wanted, scan.count) != 0:
            raise MemoryError()
        has_wanted = True
        for i in range(scan.count):
            sd_inode_set_add(&wanted, scan.sockets[i].inode, scan.sockets[i].fd)
        socket_infos = _sockets_of_wanted(nl, &wanted, scan.count, states, bytecode, known, dumps, kinds)
        if known is not None and bytecode is None:
            if known.small(scan.count):
                known.small_pids.add(pid)
            else:
                known.small_pids.discard(pid)
        _raise_if_exited(pid)
        return socket_infos
    finally:
        free(scan.sockets)
        free_dumps(dumps)
        if nl >= 0:
            close(nl)
        if has_wanted:
            sd_inode_set_free(&wanted)


def namespace_sockets_linux(uint32_t states, bytecode=None, int pid=0, dict names=None,
                            int kinds=KIND_TCP):
    """Every socket of the kinds of the mask (as process_sockets_linux) of
    pid's network namespace (0: the caller's) in the states of the bitmask,
    as SocketInfo structs with fd None; with bytecode (inet_diag bytecode)
    only those the kernel's filter keeps.  names: a dict given the name of
    each TCP socket (inode -> bytes), for ask_sockets_linux later.  OSError
    as the kernel gave it (EINVAL: a filter this kernel does not know)."""
    cdef nl_buffer dumps[KIND_SLOTS]
    cdef int nl
    if not SD_LINUX:
        raise OSError(ENOSYS, "sock_diag exists on Linux only")
    nl = sd_diag_socket(pid)
    if nl < 0:
        raise OSError(errno, os.strerror(errno), f"/proc/{pid}/ns/net" if pid else None)
    memset(dumps, 0, sizeof(dumps))
    try:
        kind_dumps(nl, kinds, states, bytecode, dumps)
        socket_infos = _decode_sockets(dumps[0].data, dumps[0].length, NULL, 0, names)
        _decode_sockets(dumps[1].data, dumps[1].length, NULL, 0, None, KIND_UDP, socket_infos)
        return _decode_sockets(dumps[2].data, dumps[2].length, NULL, 0, None, KIND_UNIX, socket_infos)
    finally:
        free_dumps(dumps)
        close(nl)


def ask_sockets_linux(names, uint32_t states, int pid=0):
    """The sockets of names (names given by namespace_sockets_linux), asked
    for by name in pid's network namespace (0: the caller's) and kept if in
    the states of the bitmask: (structs with fd None, how many the kernel
    no longer has by their name).  OSError(ENOBUFS) when answers were lost
    (the receive buffer overran): then only a dump can tell."""
    cdef nl_buffer answers
    cdef size_t i = 0, missing = 0, count = len(names)
    cdef unsigned char *requests
    cdef int nl
    if not SD_LINUX:
        raise OSError(ENOSYS, "sock_diag exists on Linux only")
    if count == 0:
        return [], 0
    requests = <unsigned char *>malloc(count * SD_DIAG_EXACT_REQUEST_SIZE)
    if requests == NULL:
        raise MemoryError()
    memset(&answers, 0, sizeof(answers))
    nl = -1
    try:
        for name in names:
            if len(<bytes>name) != SD_DIAG_NAME_SIZE:
                raise ValueError(f"a socket name is {SD_DIAG_NAME_SIZE} bytes, not {len(name)}")
            sd_diag_exact_request(requests + i * SD_DIAG_EXACT_REQUEST_SIZE, <bytes>name, DIAG_EXT, <uint32_t>i)
            i += 1
        nl = sd_diag_socket(pid)
        if nl < 0:
            raise OSError(errno, os.strerror(errno), f"/proc/{pid}/ns/net" if pid else None)
        nl_ask(nl, requests, SD_DIAG_EXACT_REQUEST_SIZE, count, SD_SOCK_DIAG_BY_FAMILY, &answers, &missing)
        return _decode_sockets(answers.data, answers.length, NULL, states), missing
    finally:
        free(requests)
        free(answers.data)
        if nl >= 0:
            close(nl)


def cgroup_sockets_linux(list pids, uint64_t cgroup_id, namespace, bytecode, uint32_t states,
                         uint32_t full_pass_states, KnownSockets known not None):
    """The TCP sockets of a cgroup tree (cgroup_id: its top; bytecode: the
    inet_diag filter of its ids) in one network namespace (namespace: its
    inode; pids: the cgroup's processes there, the first one's namespace is
    read, none: the caller's), in the states of the bitmask, as SocketInfo
    structs with fd None.

    They are asked for by name when known allows (the sockets of the cgroup's
    last full pass, with states full_pass_states, while its processes hold
    no other); otherwise, or when answers were lost (ENOBUFS), a full pass
    dumps the sockets the filter keeps, in full_pass_states, and known
    remembers them.  OSError as the kernel gave it."""
    cdef tuple key = (cgroup_id, namespace)
    cdef int pid = pids[0] if pids else 0
    held = set(socket_owners(pids)[0]) if pids else set()
    names = known.cgroup_names(key, held) if states == full_pass_states else None
    if names is not None:
        try:
            found, missing = ask_sockets_linux(names, states, pid)
        except OSError as err:
            if err.errno != ENOBUFS:  # answers lost: a full pass below
                raise
        else:
            if missing:  # closed
                known.forget_closed(key, found)
            known.exact_passes += 1
            return found
    learnt = {}
    found = namespace_sockets_linux(full_pass_states, bytecode, pid, learnt)
    known.remember_cgroup_pass(key, learnt, held)
    if states != full_pass_states:
        found = [s for s in found if states >> STATE_NUMBERS[s.state] & 1]
    return found


cdef object _with_fd(object socket_info, object fd):
    """A copy of a SocketInfo with another fd (a socket several processes hold)."""
    copy = SOCKET_INFO.copy(socket_info)
    PyObject_GC_UnTrack(copy)
    SOCKET_INFO.put(copy, SI_FD, fd)
    return copy


def sockets_of_processes_linux(pids, uint32_t states, KnownSockets known=None, int kinds=KIND_TCP):
    """The sockets of several processes of the kinds of the mask (as
    process_sockets_linux), read in one pass: {pid: list of
    SocketInfo, or the OSError of its fd scan, or OSError(ESRCH) when it
    exited during the pass (as process_sockets_linux raises)}.

    Every pid's fds are scanned, then the union of their sockets is read at
    once (exact requests when known allows, else one dump per family), in
    the network namespace of the first pid: pids must share it.  A socket
    several of them hold appears under each, with each one's lowest fd."""
    cdef sd_fd_socket *sockets
    cdef size_t count, i, total = 0
    cdef sd_inode_set wanted
    cdef bint has_wanted = False
    cdef nl_buffer dumps[KIND_SLOTS]
    cdef int nl = -1, namespace_pid = 0
    if not SD_LINUX:
        raise OSError(ENOSYS, "sock_diag exists on Linux only")
    results = {}
    held = {}  # pid -> {inode: lowest fd}
    for pid in pids:
        if sd_scan_socket_fds(pid, &sockets, &count) != 0:
            results[pid] = OSError(errno, os.strerror(errno), f"/proc/{pid}/fd")
            continue
        fds = {}
        try:
            for i in range(count):
                inode = sockets[i].inode
                fd = sockets[i].fd
                if fds.get(inode, fd) >= fd:
                    fds[inode] = fd
        finally:
            free(sockets)
        held[pid] = fds
        total += len(fds)
        if namespace_pid == 0:
            namespace_pid = pid
    if total == 0:
        for pid in held:
            results[pid] = _exit_error(pid) or []
        return results
    memset(dumps, 0, sizeof(dumps))
    try:
        nl = sd_diag_socket(namespace_pid)
        if nl < 0:
            raise OSError(errno, os.strerror(errno), f"/proc/{namespace_pid}/ns/net")
        if sd_inode_set_init(&wanted, total) != 0:
            raise MemoryError()
        has_wanted = True
        for fds in held.values():
            for inode, fd in (<dict>fds).items():
                sd_inode_set_add(&wanted, inode, fd)
        by_inode = {socket_info.inode: socket_info for socket_info in
                    _sockets_of_wanted(nl, &wanted, total, states, None, known, dumps, kinds)}
    finally:
        free_dumps(dumps)
        if nl >= 0:
            close(nl)
        if has_wanted:
            sd_inode_set_free(&wanted)
    for pid, fds in held.items():
        error = _exit_error(pid)
        if error is not None:
            results[pid] = error
            continue
        found = []
        for inode, fd in (<dict>fds).items():
            socket_info = by_inode.get(inode)
            if socket_info is not None:
                found.append(socket_info if socket_info.fd == fd else _with_fd(socket_info, fd))
        results[pid] = found
    return results
