"""The connect tracer under `sockdiag top` at a sustained rate: 1,000 short
client connections a second for thirty seconds (10,000 bytes each), in a
network namespace of its own.  It must keep up: every connection's bytes
counted once, at least 99% of the client's tied to it, no event dropped.
The functional check at a lower rate is tests/test_top_trace.py.

Run (root): pytest bench/bench_top_trace.py -s   (about 35 s)
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from testsupport.top_workload import check_attribution, run_top_workload

COUNT, PER_SECOND, PAYLOAD = 30_000, 1000, 10_000


@pytest.mark.skipif(os.geteuid() != 0, reason="tracing connects needs root")
@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None,
                    reason="needs unshare (util-linux) and ip (iproute2)")
def test_a_thousand_connections_a_second_for_thirty_seconds():
    started = time.monotonic()
    result = run_top_workload(COUNT, PER_SECOND, PAYLOAD)
    elapsed = time.monotonic() - started
    check_attribution(result, COUNT, PAYLOAD)
    notes = [note for sample in result["samples"] for note in sample.get("notes", [])]
    assert not any("dropped" in note for note in notes), notes
    print(f"\n{COUNT} connections at {PER_SECOND}/s attributed in {elapsed:.1f} s")
