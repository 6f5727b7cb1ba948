"""TCP_NOTSENT_LOWAT as a time: sockdiag.LowatTuner following a reader that slows down.

A sender writes as fast as its socket takes data to a reader on loopback;
the reader takes everything at first, then --rate KiB/s.  A LowatTuner
keeps the sender's TCP_NOTSENT_LOWAT at (acknowledged bytes per second) ×
--target-ms, read from TCP_INFO at most every 50 ms between writes.  Each
line is one update that changed the limit, and the last line counts them.

    $ python examples/lowat_tuner.py
    target 20 ms; the reader slows to 1000 KiB/s after 0.5 s
      time_s    rate_kib_s    lowat_bytes    unsent_bytes
    --------  ------------  -------------  --------------
        0.05       35762.0         732405               0
        0.10      111094.0        2275204          591372
        0.20      139883.7        2864818          891496
        0.60       86651.8        1774629         1003764
        0.65       52760.6        1080537          992276
        0.70       27741.2         568141          998020
        0.75         920.0          18843          950632
    updates 36, changes 7 over 1.8 s; lowat at the end 18843 bytes (1000 KiB/s x 20 ms = 20480)

The limit is megabytes while loopback drains a hundred MB/s and more; once
the reader slows, the rate averaged over the last five updates (250 ms)
falls, and within five updates the limit is on 20 ms of the new rate
(a little under 20480: the reader's pacing loses a few percent).  A steady
rate then leaves it alone (the hysteresis band is ±25%).  The MSS is
clamped to Ethernet's 1448 bytes and the reader's buffer kept small, so
that its window opens in small steps, as across a network: ACKs that come
in 64 KiB bursts make the rate over 250 ms swing by more than the band.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

from tabulate import tabulate

import sockdiag

MSS = 1448
RECEIVE_BUFFER = 16 * 1024


def connected_pair() -> tuple[socket.socket, socket.socket]:
    with socket.socket() as listener:
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, MSS)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        sender = socket.socket()
        sender.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, MSS)
        sender.connect(listener.getsockname())
        reader, _ = listener.accept()
    return sender, reader


def read(sock: socket.socket, slow_from: float, rate: float) -> None:
    """Read everything until slow_from (time.monotonic()), then rate bytes/s."""
    sock.settimeout(1.0)
    try:
        while True:
            slow = time.monotonic() >= slow_from
            started = time.monotonic()
            got = len(sock.recv(max(1, int(rate / 100)) if slow else 1 << 20))
            if not got:
                return
            if slow:
                time.sleep(max(0.0, got / rate - (time.monotonic() - started)))
    except OSError:
        return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-ms", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="slow reading rate, KiB/s")
    parser.add_argument("--fast-seconds", type=float, default=0.5)
    parser.add_argument("--seconds", type=float, default=1.8)
    args = parser.parse_args()

    sender, reader = connected_pair()
    start = time.monotonic()
    rate = args.rate * 1024
    thread = threading.Thread(target=read, args=(reader, start + args.fast_seconds, rate),
                              daemon=True)
    thread.start()
    tuner = sockdiag.LowatTuner(sender, target_ms=args.target_ms)
    print(f"target {args.target_ms:g} ms; the reader slows to {args.rate:g} KiB/s "
          f"after {args.fast_seconds:g} s")
    sender.setblocking(False)
    chunk = b"x" * 16384
    rows = []
    while (now := time.monotonic()) - start < args.seconds:
        try:
            sender.send(chunk)
        except BlockingIOError:
            time.sleep(0.0005)
        before = tuner.changes
        tuner.maybe_update()
        if tuner.changes != before:
            rows.append([f"{now - start:.2f}", f"{tuner.rate_bytes_per_s / 1024:.1f}",
                         tuner.lowat_bytes, sockdiag.send_buffer(sender).unsent])
    print(tabulate(rows, headers=["time_s", "rate_kib_s", "lowat_bytes", "unsent_bytes"],
                   disable_numparse=True, colalign=("right",) * 4))
    print(f"updates {tuner.updates}, changes {tuner.changes} over {args.seconds:g} s; "
          f"lowat at the end {tuner.lowat_bytes} bytes ({args.rate:g} KiB/s x "
          f"{args.target_ms:g} ms = {round(rate * args.target_ms / 1e3)})")
    sender.close()
    reader.close()


if __name__ == "__main__":
    main()
