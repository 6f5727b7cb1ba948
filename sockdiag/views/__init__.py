"""The view layer: what people see of sockdiag's structs.

``live`` is the one refresh loop and screen, ``table`` the one table
renderer; ``watch``, ``top`` and ``ifstat`` render their structs (labels,
units and formatters from ``sockdiag.fields``) and ``header_lines`` adds
the lines under watch's header.  Views import the library, never the other
way round; the commands in ``sockdiag.cli`` parse options and call them.
"""
