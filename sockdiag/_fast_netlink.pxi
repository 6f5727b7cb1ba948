# The one netlink engine (iproute2's libnetlink habit): one receive routine,
# one message walker, one dump routine and one routine for many exact
# requests.  sock_diag dumps and exact requests, the socket-destroy
# notifications and the rtnetlink link dump all go through them, and pass a
# per-message handler that turns a payload into a struct.

from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport EAGAIN, EINTR, EIO, EMSGSIZE, ENOBUFS, ENOENT, ESTALE
from libc.stdint cimport SIZE_MAX
from libc.stdlib cimport free, realloc
from libc.string cimport memmove
from .includes.netlink cimport *

# A handler gets each payload of the wanted message type and adds what it
# decodes to out.
ctypedef int (*nl_handler)(object out, const unsigned char *payload, size_t length) except -1

cdef enum:
    NL_DONE = 1         # NLMSG_DONE seen: the dump is over
    NL_INTERRUPTED = 2  # NLM_F_DUMP_INTR: the table changed during the dump
    NL_RECEIVE_MIN = 32768  # a dump batch is at most 32 KiB (Linux 6.18)
    # Exact requests sent at a time: their answers (about 2 KiB of receive
    # buffer each) must fit the default 208 KiB, or the kernel drops them.
    NL_ASK_BATCH = 48
    # Room for one answer to an exact request when receiving many at once:
    # a socket with tcp_info, memory and congestion is 456 bytes (Linux 6.18).
    NL_ANSWER_SLOT = 1024


cdef struct nl_answers:
    size_t answered  # messages received in answer to exact requests
    size_t missing   # of which NLMSG_ERROR ENOENT/ESTALE


cdef struct nl_buffer:
    unsigned char *data  # malloc'd
    size_t length        # bytes kept
    size_t capacity


cdef int nl_reserve(nl_buffer *buf, size_t extra) except -1:
    """Room for extra more bytes at buf.data + buf.length."""
    cdef size_t capacity = buf.capacity if buf.capacity else NL_RECEIVE_MIN
    cdef unsigned char *grown
    while capacity - buf.length < extra:
        capacity *= 2
    if capacity != buf.capacity:
        grown = <unsigned char *>realloc(buf.data, capacity)
        if grown == NULL:
            raise MemoryError()
        buf.data = grown
        buf.capacity = capacity
    return 0


cdef ssize_t nl_receive(int fd, nl_buffer *buf, bint wait) except -2:
    """Appends the next datagram to buf.data + buf.length; its length.

    The datagram's size is peeked first (MSG_PEEK | MSG_TRUNC), so no batch
    is ever cut (iproute2's rtnl_recvmsg does the same).  An EINTR runs the signal handlers (a KeyboardInterrupt
    wins) and receives again.  -EAGAIN (nothing waiting, when not wait) and
    -ENOBUFS (the kernel dropped messages: the receive buffer overran) are
    returned for the caller to decide; any other error raises OSError.
    buf.length is not moved.
    """
    cdef int flags = 0 if wait else MSG_DONTWAIT
    cdef ssize_t size, received
    cdef int err
    while True:
        with nogil:
            size = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC | flags)
        if size >= 0:
            # The kernel fills dump batches to the largest length a reader
            # asked for (up to 32 KiB): never ask for less.
            if size < NL_RECEIVE_MIN:
                size = NL_RECEIVE_MIN
            nl_reserve(buf, <size_t>size)
            with nogil:
                received = recv(fd, buf.data + buf.length, <size_t>size, MSG_TRUNC | flags)
            if received > size:
                raise OSError(EMSGSIZE, f"a {received}-byte netlink datagram grew after its size was read")
            if received >= 0:
                return received
        err = errno
        if err == EINTR:
            PyErr_CheckSignals()
            continue
        if err == EAGAIN or err == ENOBUFS:
            return -err
        raise OSError(err, os.strerror(err), None, None, "recv(netlink)")


cdef int nl_walk(const unsigned char *buf, size_t length, uint16_t message_type,
                 nl_handler handler, object out, bint stop_at_done,
                 nl_answers *answers=NULL) except -1:
    """Walks the netlink messages in buf; returns NL_* flags.

    Each payload of message_type goes to handler (NULL: only the headers
    are read).  At NLMSG_DONE the walk stops if stop_at_done.  A kernel
    NLMSG_ERROR raises OSError with its errno (0, an acknowledgement, is
    skipped); a length that points outside buf raises ValueError.  With
    answers (exact requests), every message is counted as an answer, and an
    NLMSG_ERROR of ENOENT or ESTALE (nothing by that name, or another object
    now) is counted as missing instead of raised.
    """
    cdef sd_nlmsghdr header
    cdef int32_t error
    cdef size_t offset = 0
    cdef int flags = 0
    while offset + SD_NLMSG_HDRLEN <= length:
        memcpy(&header, buf + offset, SD_NLMSG_HDRLEN)
        if header.nlmsg_len < SD_NLMSG_HDRLEN or header.nlmsg_len > length - offset:
            raise ValueError(
                f"netlink message of {header.nlmsg_len} bytes at offset {offset} of a {length}-byte buffer")
        if header.nlmsg_flags & SD_NLM_F_DUMP_INTR:
            flags |= NL_INTERRUPTED
        if answers != NULL:
            answers.answered += 1
        if header.nlmsg_type == SD_NLMSG_DONE:
            flags |= NL_DONE
            if stop_at_done:
                return flags
        elif header.nlmsg_type == SD_NLMSG_ERROR:
            if header.nlmsg_len < SD_NLMSG_HDRLEN + 4:
                raise ValueError("NLMSG_ERROR without its error code")
            memcpy(&error, buf + offset + SD_NLMSG_HDRLEN, 4)
            if error > 0 or error < -SD_MAX_ERRNO:
                raise ValueError(f"NLMSG_ERROR with error code {error}, not 0 or -errno")
            if answers != NULL and (error == -ENOENT or error == -ESTALE):
                answers.missing += 1
            elif error != 0:
                raise OSError(-error, os.strerror(-error), None, None, "NLMSG_ERROR")
        elif header.nlmsg_type == message_type and handler != NULL:
            handler(out, buf + offset + SD_NLMSG_HDRLEN, header.nlmsg_len - SD_NLMSG_HDRLEN)
        # The last message of a datagram may lack its padding.
        offset += SD_ALIGN4(header.nlmsg_len)
    if offset < length:
        raise ValueError(
            f"truncated netlink message: {length - offset} bytes after the last netlink message")
    return flags


cdef object _output_mark(object out):
    if type(out) is tuple:
        return tuple([len(part) for part in out])
    return 0 if out is None else len(out)


cdef int _output_rewind(object out, object mark) except -1:
    """Drops what handlers added to out since mark (a dump taken again)."""
    if type(out) is tuple:
        for part, length in zip(out, mark):
            del part[length:]
    elif type(out) is list:
        del out[mark:]
    elif type(out) is dict:
        if mark != 0:
            raise ValueError("a dump decodes into an empty dict")
        out.clear()
    return 0


cdef int nl_dump(int fd, const void *request, size_t request_length, uint16_t message_type,
                 nl_handler handler, object out, nl_buffer *kept, int attempts,
                 bint accept_interrupted) except -1:
    """The one dump routine: send request on fd, receive and walk every batch
    up to NLMSG_DONE.

    Decoding: each payload of message_type goes to handler, which adds to out
    (a list, a tuple of lists, or an empty dict).  With kept, the batches are
    appended to it instead (to be walked later) and handler is not called.
    A dump the kernel marks NLM_F_DUMP_INTR (the table changed under it) is
    taken again, what it added dropped, up to attempts in all; the last one is
    then kept if accept_interrupted, else OSError(EAGAIN).
    """
    cdef nl_buffer scratch
    cdef nl_buffer *buf = kept if kept != NULL else &scratch
    cdef size_t start
    cdef ssize_t received
    cdef int attempt, flags
    memset(&scratch, 0, sizeof(scratch))
    start = buf.length
    mark = _output_mark(out)
    try:
        for attempt in range(attempts):
            buf.length = start
            _output_rewind(out, mark)
            if sd_netlink_send(fd, request, request_length) != 0:
                raise OSError(errno, os.strerror(errno), None, None, "send(netlink dump request)")
            flags = 0
            while not flags & NL_DONE:
                received = nl_receive(fd, buf, True)
                if received < 0:
                    raise OSError(-received, os.strerror(-received), None, None, "recv(netlink)")
                if received == 0:
                    raise OSError(EIO, "the kernel ended the dump without NLMSG_DONE")
                flags |= nl_walk(buf.data + buf.length, received, message_type,
                                 NULL if kept != NULL else handler, out, True)
                if kept != NULL:
                    buf.length += received
            if not flags & NL_INTERRUPTED or (accept_interrupted and attempt == attempts - 1):
                return 0
        raise OSError(EAGAIN, f"the table changed during each of {attempts} netlink dumps")
    finally:
        free(scratch.data)


cdef int _nl_overran(int fd, nl_buffer *kept, size_t start) except -1:
    """Answers were dropped (ENOBUFS): empties the socket's queue, so that it
    can serve a dump next, drops what was kept since start, and raises."""
    while nl_receive(fd, kept, False) >= 0:
        pass
    kept.length = start
    raise OSError(ENOBUFS, os.strerror(ENOBUFS), None, None, "recv(netlink)")


cdef int _nl_keep_answer(nl_buffer *kept, const unsigned char *datagram, size_t length,
                         uint16_t message_type, nl_answers *answers, size_t *missing) except -1:
    """Walks a datagram of answers and appends it to kept (it may lie in kept's
    spare room, past kept.length), unless it says ENOENT or ESTALE: a
    datagram holds one answer, and such an error is counted, not kept."""
    cdef size_t done = answers.missing
    if length == 0:
        raise OSError(EIO, "the kernel answered fewer requests than were sent")
    nl_walk(datagram, length, message_type, NULL, None, False, answers)
    if answers.missing == done:
        memmove(kept.data + kept.length, datagram, length)
        kept.length += length
    else:
        missing[0] += answers.missing - done
    return 0


cdef int _nl_ask_again(int fd, const unsigned char *requests, size_t request_length, size_t batch,
                       uint32_t seq, uint16_t message_type, nl_buffer *kept, size_t start,
                       size_t *missing) except -1:
    """Sends again, alone, the request of batch whose answer did not fit its
    slot, and receives that answer whole (its size peeked first)."""
    cdef nl_answers answers
    cdef sd_nlmsghdr header
    cdef size_t i
    cdef ssize_t received
    for i in range(batch):
        memcpy(&header, requests + i * request_length, SD_NLMSG_HDRLEN)
        if header.nlmsg_seq == seq:
            break
    else:
        raise ValueError(f"a netlink answer of sequence number {seq}, which no request had")
    if sd_netlink_send(fd, requests + i * request_length, request_length) != 0:
        raise OSError(errno, os.strerror(errno), None, None, "send(netlink request)")
    answers.answered = 0
    answers.missing = 0
    while answers.answered < 1:
        received = nl_receive(fd, kept, True)
        if received == -ENOBUFS:
            _nl_overran(fd, kept, start)
        if received < 0:
            raise OSError(-received, os.strerror(-received), None, None, "recv(netlink)")
        _nl_keep_answer(kept, kept.data + kept.length, received, message_type, &answers, missing)
    return 0


cdef size_t nl_ask(int fd, const unsigned char *requests, size_t request_length, size_t count,
                   uint16_t message_type, nl_buffer *kept, size_t *missing) except? 0:
    """Exact requests (no NLM_F_DUMP): sends count requests of
    request_length bytes each, packed in requests, NL_ASK_BATCH per
    datagram, and appends their answers to kept (one message each: the
    object, or an NLMSG_ERROR).  Answers that say ENOENT or ESTALE are
    counted in missing and not kept; any other error raises OSError
    (ENOBUFS: the receive buffer overran and answers were lost; nothing is
    kept and the socket's queue is empty again).

    Netlink answers the requests of a datagram in order while the send runs,
    into the receive buffer; a batch small enough for that buffer is
    received before the next is sent, with one recvmmsg into a slot per
    answer rather than a peek and a read each.  An answer longer than its
    slot is asked for again alone.  Returns the bytes kept.
    """
    cdef nl_answers answers
    cdef size_t sent = 0, batch, start = kept.length, base, i
    cdef size_t lengths[NL_ASK_BATCH]
    cdef uint32_t cut[NL_ASK_BATCH]  # sequence numbers of the answers longer than their slot
    cdef size_t ncut
    cdef sd_nlmsghdr header
    cdef int received, err
    while sent < count:
        batch = count - sent if count - sent < NL_ASK_BATCH else NL_ASK_BATCH
        if sd_netlink_send(fd, requests + sent * request_length, batch * request_length) != 0:
            raise OSError(errno, os.strerror(errno), None, None, "send(netlink requests)")
        answers.answered = 0
        answers.missing = 0
        ncut = 0
        while answers.answered < batch:
            nl_reserve(kept, (batch - answers.answered) * NL_ANSWER_SLOT)
            base = kept.length
            with nogil:
                received = sd_receive_datagrams(fd, kept.data + base, NL_ANSWER_SLOT,
                                                <unsigned>(batch - answers.answered), lengths)
            if received < 0:
                err = errno
                if err == EINTR:
                    PyErr_CheckSignals()
                    continue
                if err == ENOBUFS:
                    _nl_overran(fd, kept, start)
                raise OSError(err, os.strerror(err), None, None, "recvmmsg(netlink)")
            for i in range(<size_t>received):
                if lengths[i] == SIZE_MAX:
                    memcpy(&header, kept.data + base + i * NL_ANSWER_SLOT, SD_NLMSG_HDRLEN)
                    cut[ncut] = header.nlmsg_seq
                    ncut += 1
                    answers.answered += 1
                else:
                    _nl_keep_answer(kept, kept.data + base + i * NL_ANSWER_SLOT, lengths[i],
                                    message_type, &answers, missing)
        for i in range(ncut):
            _nl_ask_again(fd, requests + sent * request_length, request_length, batch, cut[i],
                          message_type, kept, start, missing)
        sent += batch
    return kept.length - start


cdef int nl_attribute_next(const unsigned char *buf, size_t length, size_t *offset, uint16_t *type,
                           const unsigned char **payload, size_t *payload_length) except -1:
    """The one attribute iterator (includes/netlink.h) with its errors raised:
    1 and the next attribute, 0 at the end, ValueError for a malformed one."""
    cdef int status = sd_attribute_next(buf, length, offset, type, payload, payload_length)
    if status >= 0:
        return status
    _raise_attribute_error(status, buf, length, offset[0])


cdef int _raise_attribute_error(int status, const unsigned char *buf, size_t length,
                                size_t offset) except -1:
    if status == SD_ATTRIBUTE_TRUNCATED:
        raise ValueError(f"truncated attribute at the end of a {length}-byte message")
    raise ValueError(
        f"attribute of {sd_attribute_length_at(buf, offset)} bytes at offset {offset} "
        f"of a {length}-byte message")
