"""Options shared by several commands, declared once (pip-tools' habit)."""

import click

interval = click.option(
    "--interval", "-i", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
    help="Seconds between samples.",
)
count = click.option(
    "--count", "-n", type=click.IntRange(min=1), default=None,
    help="Stop after this many samples.",
)
once = click.option("--once", is_flag=True, help="Print one sample and exit.")
json_output = click.option(
    "--json", "as_json", is_flag=True,
    help="One JSON object per sample per line, for programs.",
)
