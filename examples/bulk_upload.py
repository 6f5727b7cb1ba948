"""A bulk upload to a slow reader: watch the send buffer fill up.

A client sends --megabytes to a loopback server that reads at only
--read-rate KiB/s through a small receive buffer (as a far, slow peer
would).  sockdiag.record samples the client's send buffer every 5 ms on a
background thread; the table shows one sample per --every seconds, then the
summary.  The upload blocks in sendall() while ``free`` is 0.

    $ python examples/bulk_upload.py
    uploading 4 MiB to a reader taking 2048 KiB/s
    sendall returned after 0.88 s
      time_s    unacked_kib    unsent_kib    free_kib    size_kib    queue_delay_ms
    --------  -------------  ------------  ----------  ----------  ----------------
       0.000            0.0           0.0      2560.0      2560.0               0.0
       0.100            0.0        2288.1       231.2      2560.0             184.0
       0.200            0.0        2102.1       421.3      2560.0             146.2
       0.300            0.0        1916.1       610.6      2560.0             133.8
       0.400            0.0        1730.1       799.8      2560.0             120.2
       0.500            0.0        2427.6        90.1      2560.0             169.7
       0.600           93.0        2148.6       279.4      2560.0             150.3
       0.700            0.0        1962.6       563.2      2560.0             136.2
       0.800            0.0        1776.6       752.5      2560.0             123.3
    samples 178 (dropped 0) over 0.88 s; buffer full for 0.06 s
    unsent p50/p99/max: 2102.1 / 2520.6 / 2520.6 KiB
    queue delay p50/p99/max: 139.6 / 184.0 / 184.0 ms

What it shows: on loopback ACKs are instant, so ``unacked`` stays near 0
and the backlog is ``unsent``: the reader's window is closed.  sendall()
fills the buffer (``free`` 0), sleeps, and is woken only once about a third
of the buffer is free again (the kernel's rule), hence the sawtooth in
``free_kib``.  The queue delay is ``unsent`` over the kernel's delivery-rate
estimate, which measures the bursts the reader's window lets through, not
the reader's average rate: the real wait here is closer to unsent / 2 MiB/s.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

from tabulate import tabulate

import sockdiag


def slow_reader(server: socket.socket, rate_kib_s: float, total: int) -> None:
    """Read total bytes at about rate_kib_s, in 16 KiB steps."""
    step = 16 * 1024
    got = 0
    while got < total:
        data = server.recv(step)
        if not data:
            return
        got += len(data)
        time.sleep(len(data) / (rate_kib_s * 1024))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=4, help="MiB to upload (default 4)")
    parser.add_argument("--read-rate", type=float, default=2048, help="reader's KiB/s (default 2048)")
    parser.add_argument("--sndbuf", type=int, default=1280 * 1024,
                        help="SO_SNDBUF bytes; the kernel doubles it (default 1310720)")
    parser.add_argument("--every", type=float, default=0.1, help="seconds between table rows (default 0.1)")
    args = parser.parse_args()
    total = int(args.megabytes * 1024 * 1024)

    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, args.sndbuf)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
    # A small receive buffer keeps the backlog on the sender, as over a long path.
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    reader = threading.Thread(target=slow_reader, args=(server, args.read_rate, total))
    print(f"uploading {args.megabytes:g} MiB to a reader taking {args.read_rate:g} KiB/s")
    with client, server:
        reader.start()
        started = time.monotonic()
        try:
            with sockdiag.record(client, interval=0.005) as rec:
                client.sendall(b"x" * total)
                print(f"sendall returned after {time.monotonic() - started:.2f} s")
        finally:
            reader.join()

    rows, next_row_s = [], 0.0
    first = rec.samples[0].time_s
    for s in rec.samples:
        if s.time_s - first >= next_row_s:
            rows.append((s.time_s - first, s.unacked / 1024, s.unsent / 1024, s.free / 1024,
                         s.size / 1024, None if s.queue_delay_s is None else s.queue_delay_s * 1000))
            next_row_s += args.every
    # The table comes after the upload: printing during it would slow the sampler.
    print(tabulate(rows, headers=("time_s", "unacked_kib", "unsent_kib", "free_kib", "size_kib",
                                  "queue_delay_ms"), floatfmt=("0.3f", ".1f", ".1f", ".1f", ".1f", ".1f"),
                   missingval="-"))
    summary = rec.summary()
    print(f"samples {summary.samples} (dropped {summary.dropped}) over {summary.duration_s:.2f} s; "
          f"buffer full for {summary.full_buffer_s:.2f} s")
    print("unsent p50/p99/max: " + " / ".join(
        f"{v / 1024:.1f}" for v in (summary.unsent_p50_bytes, summary.unsent_p99_bytes,
                                    summary.unsent_max_bytes)) + " KiB")
    if summary.queue_delay_p50_s is not None:
        print("queue delay p50/p99/max: " + " / ".join(
            f"{v * 1000:.1f}" for v in (summary.queue_delay_p50_s, summary.queue_delay_p99_s,
                                        summary.queue_delay_max_s)) + " ms")


if __name__ == "__main__":
    main()
