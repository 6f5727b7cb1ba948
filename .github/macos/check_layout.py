"""On a real Mac: the private tcp_info offsets sockdiag reads, against what the kernel says publicly.

The SDK has no ``struct tcp_info`` (audit.py checks it against XNU's source
only), so this checks the decoder's offsets on the running kernel: each value
read from the private struct must equal the same quantity from a public
interface, on a loopback connection whose reader does not read.

- busy socket (bytes still moving): ``tcpi_txbytes`` (offset 76) against the
  public ``tcp_connection_info``'s ``tcpi_txbytes``, until both settle;
- idle socket (the peer's window full, nothing moves): ``tcpi_snd_sbbytes``
  (64) against ``SO_NWRITE``, and the split of send_buffer against it;
- the state byte of both structs.

Each pair is two getsockopt calls, so a pair is retried until it agrees or
5 s pass.  Exit status 1 on any disagreement.
Run from the repository root after installing sockdiag: python .github/macos/check_layout.py
"""

from __future__ import annotations

import socket
import sys
import time

import sockdiag
from sockdiag import decode

SO_NWRITE = 0x1024
TCP_CONNECTION_INFO = 0x106
TCP_INFO = 0x200
OFFSETS = {check.expression: check.value for check in decode.DARWIN_ABI}


def _member(name: str) -> str:
    """"tcpi_txbytes (offset 76)": a private tcp_info member where the decoder reads it."""
    return f"{name} (offset {OFFSETS[f'offsetof(struct tcp_info, {name})']})"


def _private(sock: socket.socket):
    return decode.tcp_info_darwin(sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 512))


def _public(sock: socket.socket):
    return decode.tcp_connection_info_darwin(sock.getsockopt(socket.IPPROTO_TCP, TCP_CONNECTION_INFO, 256))


def _settled(what: str, read_pair, timeout: float = 5.0) -> bool:
    """Print and return whether read_pair() gives two equal values within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        private, public = read_pair()
        if private == public or time.monotonic() > deadline:
            ok = private == public
            print(f"{'ok  ' if ok else 'DIFF'} {what}: private {private}, public {public}")
            return ok
        time.sleep(0.01)


def main() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    with client, server:
        client.setblocking(False)
        results = [_settled(_member("tcpi_state"), lambda: (_private(client).state, _public(client).state))]
        written = 0
        try:
            while written < 64 << 20:
                written += client.send(b"x" * 65536)
                # Busy: compare while bytes still move, before the window closes.
                if written == 65536:
                    results.append(_settled(f"{_member('tcpi_txbytes')}, busy socket", lambda: (
                        _private(client).bytes_sent, _public(client).bytes_sent)))
        except BlockingIOError:
            pass
        print(f"wrote {written} bytes to a peer that does not read")
        results.append(_settled(f"{_member('tcpi_snd_sbbytes')} against SO_NWRITE, idle socket", lambda: (
            _private(client).send_buffer_bytes, client.getsockopt(socket.SOL_SOCKET, SO_NWRITE))))
        results.append(_settled("send_buffer's unacked + unsent against SO_NWRITE", lambda: (
            sockdiag.send_buffer(client).inflight, client.getsockopt(socket.SOL_SOCKET, SO_NWRITE))))
        results.append(_settled(f"{_member('tcpi_txbytes')}, idle socket", lambda: (
            _private(client).bytes_sent, _public(client).bytes_sent)))
    print(f"{sum(results)} of {len(results)} agree")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
