"""The Prometheus text format (0.0.4) of the exporter's families, and one scrape in it.

``text_format`` writes byte for byte what prometheus_client's
``generate_latest`` writes, faster: what depends on a family or its label
names is worked out once, and the text of each label set is kept from
scrape to scrape (bounded).  ``scrape`` is what /metrics serves and what
``export --once`` prints.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Iterable

from prometheus_client.core import Metric
from prometheus_client.openmetrics.exposition import escape_label_name, escape_metric_name
from prometheus_client.utils import floatToGoString

from .export import Collector, _Family, _GaugeHistogram, registry


# prometheus_client's generate_latest checks and escapes every label name of
# every sample (10 us a line: most of a scrape); text_format writes the same
# bytes with what depends on the family or the label names worked out once.

# How generate_latest writes an OpenMetrics type in the text format:
# (suffix of the family's name, type written).
_TEXT_TYPES = {"counter": ("_total", "counter"), "info": ("_info", "gauge"),
               "stateset": ("", "gauge"), "gaugehistogram": ("", "histogram"),
               "unknown": ("", "untyped")}
# Samples generate_latest moves to a gauge family of their own after the
# family's, in this (sorted) order.
_OPENMETRICS_SUFFIXES = ("_created", "_gcount", "_gsum")


def _help_text(documentation: str) -> str:
    return documentation.replace("\\", r"\\").replace("\n", r"\n")


# The label text of each (label names, values) written, kept from scrape to
# scrape: a watched process's labels come back in every family and every
# scrape, and building the text was most of what a line cost.  Beyond the
# bound (per-socket series of churning connections) it starts again.
_LABEL_TEXTS: dict = {}
_LABEL_TEXTS_MAX = 1 << 16


class _TextWriter:
    """The lines of samples, with what repeats (label name orders, escaped
    label values and names) worked out once per exposition."""

    __slots__ = ("label_formats", "label_values", "names", "output")

    def __init__(self) -> None:
        self.label_formats: dict = {}  # label names as given -> (their values sorted by name, template)
        self.label_values: dict = {}  # label value -> its escaped text
        self.names: dict = {}  # metric or sample name -> its escaped text
        self.output: list[str] = []

    def name(self, name: str) -> str:
        escaped = self.names.get(name)
        if escaped is None:
            escaped = self.names[name] = escape_metric_name(name)
        return escaped

    def header(self, name: str, help_text: str, text_type: str) -> None:
        name = self.name(name)
        self.output.append(f"# HELP {name} {help_text}\n# TYPE {name} {text_type}\n")

    def labels(self, names: tuple, values: tuple) -> str:
        """{name="value",...} sorted by name, or "" without labels."""
        if not names:
            return ""
        text = _LABEL_TEXTS.get((names, values))
        if text is None:
            found = self.label_formats.get(names)
            if found is None:
                found = self.label_formats[names] = self._label_format(names)
            in_order, template = found
            text = template.format(*[self.escaped(value) for value in in_order(values)])
            if len(_LABEL_TEXTS) >= _LABEL_TEXTS_MAX:
                _LABEL_TEXTS.clear()
            _LABEL_TEXTS[names, values] = text
        return text

    def escaped(self, value: str) -> str:
        text = self.label_values.get(value)
        if text is None:
            # Label values are written as UTF-8, only \\, newline and " escaped.
            text = self.label_values[value] = (
                value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"'))
        return text

    @staticmethod
    def _label_format(names: tuple):
        order = sorted(range(len(names)), key=names.__getitem__)
        in_order = itemgetter(*order) if len(order) > 1 else (lambda values: (values[order[0]],))
        pairs = ",".join(f'{escape_label_name(names[i])}="{{}}"' for i in order)
        return in_order, "{{" + pairs + "}}"

    def sample(self, sample) -> str:
        labels = sample.labels
        line = f"{self.name(sample.name)}{self.labels(tuple(labels), tuple(labels.values()))}"
        if sample.timestamp is not None:
            return f"{line} {_value_text(sample.value)} {int(float(sample.timestamp) * 1000):d}\n"
        return f"{line} {_value_text(sample.value)}\n"

    def metric(self, metric: Metric) -> None:
        """A family as generate_latest writes it: its name and type made
        those of the text format, the OpenMetrics samples moved to gauge
        families of their own after it."""
        suffix, text_type = _TEXT_TYPES.get(metric.type, ("", metric.type))
        help_text = _help_text(metric.documentation)
        self.header(metric.name + suffix, help_text, text_type)
        moved = {metric.name + suffix: suffix for suffix in _OPENMETRICS_SUFFIXES}
        moved_lines: dict[str, list[str]] = {}
        for sample in metric.samples:
            suffix = moved.get(sample.name)
            if suffix is None:
                self.output.append(self.sample(sample))
            else:
                moved_lines.setdefault(suffix, []).append(self.sample(sample))
        for suffix in _OPENMETRICS_SUFFIXES:
            if suffix in moved_lines:
                self.header(metric.name + suffix, help_text, "gauge")
                self.output.extend(moved_lines[suffix])

    def family(self, family: _Family) -> None:
        """What metric() writes for one of ours, from its rows."""
        suffix, text_type = _TEXT_TYPES.get(family.type, ("", family.type))
        help_text = _help_text(family.documentation)
        self.header(family.name + suffix, help_text, text_type)
        names, output = family.label_names, self.output
        if type(family) is _GaugeHistogram:
            bucket_names = names + ("le",)
            bucket = self.name(family.name + "_bucket")
            for labels, buckets, _ in family.rows:
                output += [f"{bucket}{self.labels(bucket_names, labels + (bound,))} {_value_text(count)}\n"
                           for bound, count in buckets]
            if family.rows:
                # The count is that of the last bucket (+Inf).
                counts = [(labels, buckets[-1][1]) for labels, buckets, _ in family.rows]
                sums = [(labels, gsum_value) for labels, _, gsum_value in family.rows]
                for suffix, rows in (("_gcount", counts), ("_gsum", sums)):
                    self.header(family.name + suffix, help_text, "gauge")
                    name = self.name(family.name + suffix)
                    output += [f"{name}{self.labels(names, labels)} {_value_text(value)}\n"
                               for labels, value in rows]
            return
        name = self.name(family.name + family.SAMPLE_SUFFIX)
        output += [f"{name}{self.labels(names, labels)} {_value_text(value)}\n"
                   for labels, value in family.rows]


def _value_text(value) -> str:
    # floatToGoString of an int below 10**6 (most values): its digits and ".0".
    if type(value) is int and -1_000_000 < value < 1_000_000:
        return f"{value}.0"
    return floatToGoString(value)


def text_format(metrics: Iterable[Metric]) -> bytes:
    """The Prometheus text format (0.0.4) of metric families: byte for byte
    what prometheus_client's generate_latest writes for them, faster."""
    writer = _TextWriter()
    for metric in metrics:
        if isinstance(metric, _Family):
            writer.family(metric)
        else:
            writer.metric(metric)
    return "".join(writer.output).encode("utf-8")


def scrape(collector: Collector) -> bytes:
    """One scrape in the Prometheus text format (what /metrics serves)."""
    return text_format(registry(collector).collect())
