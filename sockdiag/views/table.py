"""The one table renderer of the views (tabulate, imported when a table is drawn)."""

from __future__ import annotations

from typing import Optional, Sequence


def table(rows: Sequence[Sequence], columns: Sequence[str], *, left_aligned: Sequence[str] = (),
          max_width: Optional[int] = None, droppable: Sequence[str] = (), spaced: bool = False) -> str:
    """rows under columns, right-aligned but for the left_aligned columns.

    Compact (the live views): one space between columns, headers no wider
    than their column, narrowed to max_width by dropping the droppable
    columns in order.  ``spaced``: two spaces between columns and headers
    two wider than their text (ifstat's table).
    """
    from tabulate import tabulate  # `watch --json` never draws a table

    align = ["left" if name in left_aligned else "right" for name in columns]
    if spaced:
        return tabulate(rows, headers=columns, colalign=align)
    from tabulate import DataRow, TableFormat

    # The header and its rule are made as rows: tabulate pads headers by two
    # more spaces, which an 80-column screen cannot spare.
    plain = TableFormat(lineabove=None, linebelowheader=None, linebetweenrows=None, linebelow=None,
                        headerrow=DataRow("", " ", ""), datarow=DataRow("", " ", ""),
                        padding=0, with_header_hide=None)
    keep = list(range(len(columns)))
    dropped = [columns.index(name) for name in droppable]
    while True:
        body = [[str(row[i]) for i in keep] for row in rows]
        header = [columns[i] for i in keep]
        rule = ["-" * max(len(cell) for cell in column) for column in zip(header, *body)]
        text = tabulate([header, rule] + body, tablefmt=plain, disable_numparse=True,
                        colalign=[align[i] for i in keep])
        if max_width is None or not dropped or len(text.split("\n", 1)[0]) <= max_width:
            return text
        keep.remove(dropped.pop(0))
