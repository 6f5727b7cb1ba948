"""A real Prometheus server for tests: own loopback port, temporary config and data.

Debian's `prometheus` package provides the binary; its own service is never
used.  The server scrapes the given targets every second and is stopped (and
its directory removed by the caller's tmp_path) when the context exits.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

PROMETHEUS = shutil.which("prometheus")

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: sockdiag
    static_configs:
      - targets: [{targets}]
{extra}"""


def free_port() -> int:
    """A TCP port nobody listens on right now on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Prometheus:
    """Client of a running test server's HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as response:
            return json.load(response)

    def query(self, promql: str) -> list[tuple[dict, float]]:
        """Instant query: [(labels, value)]."""
        answer = self.get("/api/v1/query", query=promql)
        assert answer["status"] == "success", answer
        return [(r["metric"], float(r["value"][1])) for r in answer["data"]["result"]]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False


@contextlib.contextmanager
def prometheus_server(directory, targets: list[str], startup_timeout_s: float = 30.0,
                      scrape_options: str = ""):
    """Run Prometheus scraping targets ("host:port") every second; yields a Prometheus.

    scrape_options: more lines of the scrape job (scheme, tls_config, basic_auth…),
    indented as keys of the job.
    """
    config = directory / "prometheus.yml"
    config.write_text(CONFIG.format(targets=", ".join(f'"{t}"' for t in targets),
                                    extra=scrape_options))
    port = free_port()
    log = open(directory / "prometheus.log", "wb")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        server = Prometheus(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + startup_timeout_s
        while not server.ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"prometheus did not start: {(directory / 'prometheus.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
