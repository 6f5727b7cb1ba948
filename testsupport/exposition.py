"""The exporter seen from outside in tests and benches: sockdiag's Prometheus
text beside prometheus_client's for the same families, and a scrape of /metrics."""

from __future__ import annotations


def both_texts(metrics) -> tuple[bytes, bytes]:
    """(exposition.text_format, prometheus_client.generate_latest) of the same families."""
    import prometheus_client

    from sockdiag import exposition

    metrics = list(metrics)

    class Families:
        def collect(self):
            return iter(metrics)

    return exposition.text_format(metrics), prometheus_client.generate_latest(Families())


def get_metrics(port: int, user: str | None = None, password: str | None = None, *, cafile=None,
                timeout: float = 10):
    """GET /metrics from 127.0.0.1:port, over https trusting cafile when given, with
    basic auth when user is: (status, body, headers), an HTTP error's included."""
    import base64
    import ssl
    import urllib.error
    import urllib.request

    headers = {}
    if user is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    scheme, context = ("https", ssl.create_default_context(cafile=str(cafile))) if cafile else ("http", None)
    request = urllib.request.Request(f"{scheme}://127.0.0.1:{port}/metrics", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers
