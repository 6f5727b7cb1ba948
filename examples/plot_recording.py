"""Plot a recording: a bursty writer's send buffer over time, as a PNG.

Writes a --burst-kib burst every --period seconds to a loopback reader that
takes --read-rate KiB/s, records the sender with sockdiag.record (2 ms
interval, plus the kernel's RTT), then writes the PNG (unacked / unsent /
free / size, and queue delay below) and, with --csv, the samples.
Needs matplotlib: ``pip install 'sockdiag[plot]'``.  The writer (5 MiB/s
on average) outpaces the reader, so each burst leaves more unsent behind:
a rising sawtooth in ``unsent`` and in the queue delay.

    $ python examples/plot_recording.py --output recording.png --csv recording.csv
    10 bursts of 512 KiB every 0.1 s to a reader taking 4096 KiB/s
    wrote recording.png: 626 samples over 1.25 s (buffer full 0.00 s, unsent max 1395.0 KiB)
    wrote recording.csv: columns time_s, size, unacked, unsent, free, queue_delay_s, limited_by, stalled_s, rtt_us
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

import sockdiag


def reader(server: socket.socket, rate_kib_s: float, total: int) -> None:
    """Read total bytes at about rate_kib_s."""
    got = 0
    start = time.monotonic()
    while got < total:
        data = server.recv(16 * 1024)
        if not data:
            return
        got += len(data)
        time.sleep(max(0.0, start + got / (rate_kib_s * 1024) - time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="recording.png", help="PNG to write (default recording.png)")
    parser.add_argument("--csv", help="also write the samples to this CSV file")
    parser.add_argument("--bursts", type=int, default=10, help="number of bursts (default 10)")
    parser.add_argument("--burst-kib", type=int, default=512, help="KiB per burst (default 512)")
    parser.add_argument("--period", type=float, default=0.1, help="seconds between bursts (default 0.1)")
    parser.add_argument("--read-rate", type=float, default=4096, help="reader's KiB/s (default 4096)")
    args = parser.parse_args()
    burst = b"x" * (args.burst_kib * 1024)
    total = len(burst) * args.bursts
    print(f"{args.bursts} bursts of {args.burst_kib} KiB every {args.period:g} s "
          f"to a reader taking {args.read_rate:g} KiB/s")

    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    # A small receive buffer keeps the backlog on the sender, as over a long path.
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    reading = threading.Thread(target=reader, args=(server, args.read_rate, total))
    with client, server:
        reading.start()
        try:
            with sockdiag.record(client, interval=0.002, fields=("rtt_us",)) as rec:
                start = time.monotonic()
                for n in range(args.bursts):
                    client.sendall(burst)
                    time.sleep(max(0.0, start + (n + 1) * args.period - time.monotonic()))
                reading.join()  # recording until the reader has it all
        finally:
            reading.join()

    rec.plot(args.output)
    summary = rec.summary()
    print(f"wrote {args.output}: {summary.samples} samples over {summary.duration_s:.2f} s "
          f"(buffer full {summary.full_buffer_s:.2f} s, unsent max {summary.unsent_max_bytes / 1024:.1f} KiB)")
    if args.csv:
        rec.to_csv(args.csv)
        print(f"wrote {args.csv}: columns {', '.join(rec.samples[0]._fields)}")


if __name__ == "__main__":
    main()
