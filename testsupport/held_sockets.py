"""A child process holding TCP connections of known state, and reporting the
kernel's own numbers for each of its sockets (ioctls and getsockopt, read in
the process that owns them): the oracle the exporter's series are checked
against.  The test never touches the child's fds.

Its connections, to a listener of its own (64 KiB receive buffer, so the
state settles at once):
  filled:  the client wrote until the kernel refused more; nobody reads
  replied: the server wrote 3,000 bytes the client leaves unread, and the
           client 500 bytes the server leaves unread
"""

from __future__ import annotations

import json
import textwrap

from .children import python_child

HOLDER = textwrap.dedent("""
    import json, socket, struct, sys
    from testsupport.loopback import SIOCOUTQ, SIOCOUTQNSD, endpoint, fill, ioctl_int
    SIOCINQ, SO_MEMINFO = 0x541B, 55
    TCPI_NOTSENT_OFFSET, TCPI_DELIVERY_RATE_OFFSET = 144, 160

    def kernel_numbers(sock):
        meminfo = struct.unpack("9I", sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 36))
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
        return {"fd": sock.fileno(), "local": endpoint(sock.getsockname()),
                "remote": endpoint(sock.getpeername()), "outq": ioctl_int(sock, SIOCOUTQ),
                "outq_unsent": ioctl_int(sock, SIOCOUTQNSD), "inq": ioctl_int(sock, SIOCINQ),
                "sndbuf": meminfo[3], "wmem_queued": meminfo[5],
                "tcpi_notsent": struct.unpack_from("I", info, TCPI_NOTSENT_OFFSET)[0],
                "tcpi_delivery_rate": struct.unpack_from("Q", info, TCPI_DELIVERY_RATE_OFFSET)[0],
                "tcp_info": info.hex()}

    sys.stdin.readline()  # go: moved into a cgroup first, if any
    family = socket.AF_INET6 if sys.argv[1] == "ipv6" else socket.AF_INET
    listener = socket.socket(family)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    listener.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    listener.listen(8)
    pairs = []
    for _ in range(2):
        client = socket.create_connection(listener.getsockname()[:2])
        pairs.append((client, listener.accept()[0]))
    (filled, _), (replied, replied_server) = pairs
    fill(filled)
    replied_server.sendall(b"r" * 3000)
    replied.sendall(b"q" * 500)
    print(json.dumps({"listener": endpoint(listener.getsockname())}), flush=True)
    for _ in sys.stdin:
        print(json.dumps([kernel_numbers(s) for pair in pairs for s in pair]), flush=True)
""")


class HeldSockets:
    """The holder child: ``start()`` (after moving it into a cgroup, if
    wanted), then ``report()`` for the kernel's numbers of its sockets."""

    def __init__(self, family: str = "ipv4") -> None:
        self.process = python_child(HOLDER, family)
        self.pid = self.process.pid
        self.listener = ""

    def start(self) -> "HeldSockets":
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        self.listener = json.loads(self.process.stdout.readline())["listener"]
        return self

    def report(self) -> list[dict]:
        """[{fd, local, remote, outq, outq_unsent, inq, sndbuf, wmem_queued,
        tcpi_notsent, tcpi_delivery_rate, tcp_info (the whole struct, hex)}]
        of each connected socket, now."""
        self.process.stdin.write("report\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def settled(self, read, attempts: int = 20):
        """read() taken between two equal reports (a zero-window probe can
        still move a few bytes just after the fill); (report, read())."""
        def queues(report: list[dict]) -> list[dict]:
            return [{k: v for k, v in sock.items() if k != "tcp_info"} for sock in report]  # its timers tick

        before = self.report()
        for _ in range(attempts):
            value = read()
            after = self.report()
            if queues(after) == queues(before):
                return after, value
            before = after
        raise AssertionError("the held sockets never settled")

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self.process.stdin.close()
        self.process.stdout.close()
