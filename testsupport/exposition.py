"""sockdiag's Prometheus text beside prometheus_client's, for the same families."""

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
