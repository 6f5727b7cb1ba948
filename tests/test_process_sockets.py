"""process_sockets: every TCP socket of a process, checked against ss and send_buffer."""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import given, settings, strategies as st

import sockdiag
from sockdiag import decode, reference
from conftest import fill, requires_root, requires_ss, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux only")


def own_socket(sock: socket.socket):
    """The struct of sock among this process's sockets, or None."""
    port = sock.getsockname()[1]
    peer = sock.getpeername()[1]
    for info in sockdiag.process_sockets(os.getpid()):
        if info.local_port == port and info.remote_port == peer:
            return info
    return None


def ss_view(sock: socket.socket) -> dict:
    """ss -tnmi's numbers for sock: Send-Q, Recv-Q, notsent, tb (sndbuf), w (wmem_queued)."""
    port, peer = sock.getsockname()[1], sock.getpeername()[1]
    out = subprocess.run(
        ["ss", "-tnmiOH", "sport", "=", f":{port}", "and", "dport", "=", f":{peer}"],
        capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    fields = lines[0].split()
    skmem = dict(re.findall(r"([a-z]+)(\d+)", re.search(r"skmem:\(([^)]*)\)", lines[0]).group(1)))
    notsent = re.search(r"notsent:(\d+)", lines[0])
    rwnd_limited = re.search(r"rwnd_limited:\d+ms\(([\d.]+)%\)", lines[0])
    return {
        "rwnd_limited_percent": float(rwnd_limited.group(1)) if rwnd_limited else 0.0,
        "recv_q": int(fields[1]),
        "send_q": int(fields[2]),
        "notsent": int(notsent.group(1)) if notsent else 0,  # ss omits notsent:0
        "tb": int(skmem["tb"]),
        "w": int(skmem["w"]),
    }


def stable_send_buffer(sock: socket.socket):
    """Wait until the kernel stops moving sock's send buffer (the peer does not read)."""
    def settled():
        first = sockdiag.send_buffer(sock)
        time.sleep(0.05)
        return first == sockdiag.send_buffer(sock) and first
    return wait_until(settled, timeout=10)


@requires_ss
def test_split_matches_ss_and_send_buffer(tcp_pair):
    client, server = tcp_pair
    written = fill(client)
    stable_send_buffer(client)

    def agree():
        info, ss, own = own_socket(client), ss_view(client), sockdiag.send_buffer(client)
        return (info.send_queue == ss["send_q"] == own.unacked + own.unsent
                and info.unsent == ss["notsent"] == own.unsent
                and info.unacked == ss["send_q"] - ss["notsent"] == own.unacked
                and info.sndbuf == ss["tb"] == own.size
                and info.free == max(ss["tb"] - ss["w"], 0) == own.free
                and info)

    info = wait_until(agree)
    assert info.unsent > 0 and info.send_queue <= written
    assert info.fd == client.fileno()
    assert info.state == "ESTABLISHED"
    assert info.family == ("IPv6" if client.family == socket.AF_INET6 else "IPv4")
    assert (info.local_address, info.local_port) == client.getsockname()[:2]
    assert (info.remote_address, info.remote_port) == client.getpeername()[:2]
    assert info.tcp.state == "ESTABLISHED" and info.tcp.notsent_bytes == info.unsent
    assert info.congestion  # e.g. "bbr" or "cubic"
    # The peer does not read: the kernel counts the time as receiver-limited,
    # so the delivery rate of its last burst says nothing of how this queue drains.
    assert ss_view(client)["rwnd_limited_percent"] >= 10
    assert (info.limited_by, info.queue_delay_s, info.queue_delay_basis) == (
        "receiver", None, "receiver_limited")
    assert info.stalled_s is None  # one look cannot count a stall


@requires_ss
def test_receive_queue_matches_ss(tcp_pair):
    client, server = tcp_pair
    client.sendall(b"y" * 1000)
    wait_until(lambda: ss_view(server)["recv_q"] == 1000)
    info = wait_until(own_socket_of(server))
    assert info.recv_queue == 1000 and info.send_queue == 0 and info.unsent == 0
    assert info.queue_delay_s == 0.0


def own_socket_of(sock):
    return lambda: own_socket(sock)


def test_listening_socket_has_no_send_queue(family):
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family) as listener:
        listener.bind((host, 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        clients = [socket.create_connection((host, port)) for _ in range(2)]
        try:
            def listening():
                for info in sockdiag.process_sockets(os.getpid(), ["LISTEN"]):
                    if info.local_port == port and info.recv_queue == 2:
                        return info
            info = wait_until(listening)  # two connections wait in the accept queue
            assert info.state == "LISTEN" and info.fd == listener.fileno()
            assert info.send_queue is None and info.unacked is None and info.unsent is None
            assert info.queue_delay_s is None
        finally:
            for c in clients:
                c.close()


def test_state_filter_and_only_tcp(tcp_pair):
    client, server = tcp_pair
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    unix_a, unix_b = socket.socketpair()
    duplicate = os.dup(client.fileno())
    try:
        mine = sockdiag.process_sockets(os.getpid())
        inodes = [info.inode for info in mine]
        assert len(inodes) == len(set(inodes)), "a dup'd fd must not repeat its socket"
        fds = {info.fd for info in mine}
        assert client.fileno() in fds and server.fileno() in fds
        assert not fds & {udp.fileno(), unix_a.fileno(), unix_b.fileno()}
        listening = sockdiag.process_sockets(os.getpid(), states=["listen"])
        assert all(info.state == "LISTEN" for info in listening)
        established = sockdiag.process_sockets(os.getpid(), states=("ESTABLISHED", "syn-sent"))
        assert {client.fileno(), server.fileno()} <= {info.fd for info in established}
        assert all(info.state in ("ESTABLISHED", "SYN_SENT") for info in established)
    finally:
        os.close(duplicate)
        udp.close()
        unix_a.close()
        unix_b.close()


def test_fd_of_each_socket_is_its_lowest_among_many_fds(tcp_pair):
    """Hundreds of fds (the scan is shared by two threads, a chunk at a time)
    holding few sockets: each struct's fd is the lowest fd holding its
    socket, as os.readlink of /proc/self/fd says."""
    client, server = tcp_pair
    duplicates = [os.dup(sock.fileno()) for _ in range(200) for sock in (server, client)]
    try:
        lowest: dict[int, int] = {}
        for name in os.listdir("/proc/self/fd"):
            try:
                link = os.readlink(f"/proc/self/fd/{name}")
            except FileNotFoundError:
                continue  # the listing's own fd
            if link.startswith("socket:["):
                inode = int(link[8:-1])
                lowest[inode] = min(int(name), lowest.get(inode, int(name)))
        found = sockdiag.process_sockets(os.getpid())
        assert {info.inode for info in found} >= {os.fstat(client.fileno()).st_ino,
                                                  os.fstat(server.fileno()).st_ino}
        for info in found:
            assert info.fd == lowest[info.inode]
        assert len({info.inode for info in found}) == len(found)
    finally:
        for fd in duplicates:
            os.close(fd)


def test_unknown_state_is_a_value_error():
    with pytest.raises(ValueError, match="unknown TCP state 'ESTABLISHD'"):
        sockdiag.process_sockets(os.getpid(), ["ESTABLISHD"])


def test_records_of_another_process():
    """A child holding 20 connections to itself: 41 sockets, every fd right."""
    code = textwrap.dedent("""
        import os, socket, sys
        l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64)
        keep = []
        for _ in range(20):
            c = socket.create_connection(l.getsockname()); s, _ = l.accept(); keep += [c, s]
        print(" ".join(f"{x.fileno()}:{x.getsockname()[1]}" for x in [l] + keep), flush=True)
        sys.stdin.read()
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        expected = dict(pair.split(":") for pair in child.stdout.readline().split())
        found = sockdiag.process_sockets(child.pid)
        assert len(found) == 41
        assert {str(info.fd): str(info.local_port) for info in found} == expected
    finally:
        child.stdin.close()
        child.wait(timeout=10)


def test_process_opening_and_closing_sockets_while_dumped():
    """Sockets come and go during the fd scan and the dump: never an error, no repeats."""
    code = textwrap.dedent("""
        import socket, struct, sys, time
        l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(128)
        abort = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT piles up
        print("ready", flush=True)
        deadline = time.monotonic() + 60  # killed by the test long before
        while time.monotonic() < deadline:
            pairs = []
            for _ in range(30):
                c = socket.create_connection(l.getsockname()); s, _ = l.accept(); pairs.append((c, s))
            # Hold them a moment: a dump of a busy machine's whole TCP table
            # can outlast sockets that live only microseconds.
            time.sleep(0.02)
            for c, s in pairs:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, abort); c.close(); s.close()
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        sizes = set()
        dumps = 0
        deadline = time.monotonic() + 10  # the child may be slow to get going on a busy machine
        while time.monotonic() < deadline and not (len(sizes) > 1 and dumps >= 20):
            dumps += 1
            found = sockdiag.process_sockets(child.pid)
            inodes = [info.inode for info in found]
            assert len(inodes) == len(set(inodes))
            assert all(info.state in sockdiag._common.TCP_STATES for info in found)
            assert all(info.fd is not None and info.fd >= 0 for info in found)
            sizes.add(len(found))
        assert len(sizes) > 1, "the child's socket count should have changed between dumps"
    finally:
        child.kill()
        child.wait(timeout=10)


def test_unknown_pid_is_no_such_process():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid is free
    with pytest.raises(sockdiag.NoSuchProcess, match=str(child.pid)):
        sockdiag.process_sockets(child.pid)


def test_exited_process_is_no_such_process():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Not reaped yet: a zombie, whose /proc entry exists but holds no fds.
        wait_until(lambda: open(f"/proc/{child.pid}/stat").read().split(")")[1].split()[0] == "Z")
        with pytest.raises(sockdiag.NoSuchProcess, match="exited"):
            sockdiag.process_sockets(child.pid)
    finally:
        child.wait()


@requires_root
def test_other_users_process_is_access_denied():
    # Run as nobody against this (root) process: the kernel refuses /proc/<pid>/fd.
    # The exporter's check at its start (check_access, which reads no socket) says the same.
    code = textwrap.dedent(f"""
        import sockdiag
        from sockdiag import _platform
        for look in (sockdiag.process_sockets, _platform.check_access):
            try:
                look({os.getpid()})
            except sockdiag.AccessDenied as err:
                print("denied:", err)
    """)
    out = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and lines[0] == lines[1], lines
    assert lines[0].startswith("denied:")
    assert "root or as the same user" in lines[0]


def test_access_check_reads_no_socket_and_fails_as_process_sockets_fails():
    from sockdiag import _linux, _platform

    passes = (_linux._KNOWN.dump_passes, _linux._KNOWN.exact_passes)
    assert _platform.check_access(os.getpid()) is None
    assert (_linux._KNOWN.dump_passes, _linux._KNOWN.exact_passes) == passes
    for pid in (0x3FFFFF, -1):
        with pytest.raises(sockdiag.NoSuchProcess):
            _platform.check_access(pid)
        with pytest.raises(sockdiag.NoSuchProcess):
            _platform.process_sockets(pid)


@requires_root
@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None,
                    reason="needs unshare (util-linux) and ip (iproute2)")
def test_process_in_another_network_namespace():
    """A container-like child in its own network namespace: its sockets are seen there."""
    code = textwrap.dedent("""
        import socket, sys
        l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(8)
        c = socket.create_connection(l.getsockname()); s, _ = l.accept()
        print(l.getsockname()[1], c.fileno(), flush=True)
        sys.stdin.read()
    """)
    child = subprocess.Popen(
        ["unshare", "--net", "sh", "-c", f'ip link set lo up && exec "{sys.executable}" -c \'{code}\''],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port, client_fd = map(int, child.stdout.readline().split())
        found = {info.fd: info for info in sockdiag.process_sockets(child.pid)}
        assert len(found) == 3
        assert found[client_fd].remote == f"127.0.0.1:{port}"
        assert found[client_fd].state == "ESTABLISHED"
    finally:
        child.stdin.close()
        child.wait(timeout=10)


# --- the dump decoder, offline --------------------------------------------------

_NLMSG = struct.Struct("=IHHII")
_DIAG_MSG = struct.Struct("=BBBB HH 4I 4I I 2I IIIII")


def diag_message(inode: int, state: int = 1, attributes: bytes = b"", family: int = 2,
                 flags: int = 2) -> bytes:
    body = _DIAG_MSG.pack(family, state, 0, 0, socket.htons(1234), socket.htons(80),
                          socket.htonl(0x7F000001), 0, 0, 0, socket.htonl(0x7F000002), 0, 0, 0,
                          0, 0, 0, 0, 5, 300, 0, inode) + attributes
    return _NLMSG.pack(16 + len(body), 20, flags, 1, 0) + body


def attribute(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def test_decoder_on_a_synthetic_dump():
    info = bytearray(280)
    info[0] = 1  # ESTABLISHED
    offsets = {name: offset for name, offset, _ in sockdiag._fast.linux_tcp_info_fields()}
    struct.pack_into("=I", info, offsets["notsent_bytes"], 200)
    struct.pack_into("=Q", info, offsets["delivery_rate_bps"], 1000)  # bytes/s
    struct.pack_into("=I", info, offsets["snd_wnd"], 65535)  # the peer's window has room
    struct.pack_into("=I", info, offsets["snd_mss"], 1000)
    meminfo = struct.pack("=9I", 0, 0, 0, 5000, 0, 700, 0, 0, 0)
    attrs = attribute(2, bytes(info)) + attribute(7, meminfo) + attribute(4, b"cubic\0")
    done = _NLMSG.pack(20, 3, 2, 1, 0) + b"\0" * 4
    buf = diag_message(77, attributes=attrs) + diag_message(78) + done
    [wanted] = decode.inet_diag_dump(buf, {77: 9})
    assert (wanted.fd, wanted.inode, wanted.local, wanted.remote) == (9, 77, "127.0.0.1:1234", "127.0.0.2:80")
    assert (wanted.send_queue, wanted.unsent, wanted.unacked) == (300, 200, 100)
    assert (wanted.sndbuf, wanted.free, wanted.recv_queue, wanted.congestion) == (5000, 4300, 5, "cubic")
    assert wanted.queue_delay_s == pytest.approx(0.2)
    assert (wanted.queue_delay_basis, wanted.limited_by) == ("delivery_rate", None)
    assert wanted.tcp.delivery_rate_bps == 8000
    # The pure-Python twin on the same bytes: its delay is computed, not read, here too.
    assert reference.inet_diag_dump(buf, {77: 9}) == [wanted]
    every = decode.inet_diag_dump(buf)
    assert [(r.inode, r.fd) for r in every] == [(77, None), (78, None)]
    assert every[1].tcp is None and every[1].unsent is None and every[1].send_queue == 300


def test_decoder_reports_kernel_errors_and_malformed_input():
    error = _NLMSG.pack(36, 2, 0, 1, 0) + struct.pack("=i", -13) + _NLMSG.pack(16, 20, 0, 1, 0)
    with pytest.raises(PermissionError):
        decode.inet_diag_dump(error)
    with pytest.raises(ValueError, match="shorter than inet_diag_msg"):
        decode.inet_diag_dump(_NLMSG.pack(20, 20, 0, 1, 0) + b"\0" * 4)
    with pytest.raises(ValueError, match="after the last netlink message"):
        decode.inet_diag_dump(diag_message(1) + b"\0" * 5)
    with pytest.raises(ValueError, match="attribute of 400 bytes"):
        decode.inet_diag_dump(diag_message(1, attributes=struct.pack("=HH", 400, 2)), {1: 3})
    with pytest.raises(ValueError, match="address family 99"):
        decode.inet_diag_dump(diag_message(1, family=99))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_decoder_survives_garbage(data):
    for fds in (None, {1: 3}):
        try:
            decode.inet_diag_dump(data, fds)
        except (ValueError, OSError):  # OSError: a well-formed NLMSG_ERROR message
            pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 20))
def test_decoder_survives_garbage_inside_well_framed_messages(payload, state):
    # The framing is valid, the attributes are garbage: the deeper parsers must hold.
    buf = diag_message(5, state=state, attributes=payload)
    for fds in (None, {5: 1}):
        try:
            decode.inet_diag_dump(buf, fds)
        except ValueError:
            pass


def capture_dump(family: int) -> bytes:
    """The raw bytes of one sock_diag TCP dump of family, read with Python's socket module."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4) as nl:  # NETLINK_SOCK_DIAG
        request = _NLMSG.pack(72, 20, 0x301, 1, 0) + struct.pack("=BBBBI", family, 6, 0x4A, 0, 0xFFFFFFFF)
        nl.send(request + b"\0" * 48)
        chunks = []
        while True:
            chunk = nl.recv(1 << 20)
            chunks.append(chunk)
            if any(_NLMSG.unpack_from(chunk, off)[1] == 3 for off in _message_offsets(chunk)):
                return b"".join(chunks)


def test_decoder_and_reference_agree_on_a_real_dump(tcp_pair):
    """The bytes of a real dump decode identically in Cython and in reference.py."""
    client, server = tcp_pair
    fill(client)
    buf = capture_dump(client.family)
    fds = reference.socket_fds(os.getpid())
    decoded = decode.inet_diag_dump(buf, fds)
    assert decoded == reference.inet_diag_dump(buf, fds)
    assert decode.inet_diag_dump(buf) == reference.inet_diag_dump(buf)
    mine = {r.fd: r for r in decoded}
    assert mine[client.fileno()].local_port == client.getsockname()[1]
    assert mine[client.fileno()].unsent > 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.binary(max_size=300)), max_size=4),
       st.integers(0, 20), st.sampled_from([2, 10, 7]))
def test_decoder_and_reference_agree_on_synthetic_messages(attributes, state, family):
    buf = diag_message(5, state=state, family=family,
                       attributes=b"".join(attribute(kind, data) for kind, data in attributes))
    for fds in (None, {5: 1}):
        try:
            expected = reference.inet_diag_dump(buf, fds)
        except ValueError:
            with pytest.raises(ValueError):
                decode.inet_diag_dump(buf, fds)
        else:
            assert decode.inet_diag_dump(buf, fds) == expected


def _message_offsets(chunk: bytes):
    offset = 0
    while offset + 16 <= len(chunk):
        yield offset
        offset += (_NLMSG.unpack_from(chunk, offset)[0] + 3) & ~3
