"""sockdiag/_fast.pyi lists every public name of the compiled extension, and nothing else."""

from __future__ import annotations

import ast
import pathlib

from sockdiag import _fast

STUB = pathlib.Path(_fast.__file__).parent / "_fast.pyi"


def stub_names() -> set[str]:
    tree = ast.parse(STUB.read_text())
    names = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    names |= {node.target.id for node in tree.body if isinstance(node, ast.AnnAssign)}
    return {name for name in names if not name.startswith("_")}


def extension_names() -> set[str]:
    # What _fast defines itself (functions, classes, int constants): the
    # structs and tables it imports from _common are not its names.
    def its_own(value) -> bool:
        return type(value) is int or getattr(value, "__module__", None) == _fast.__name__

    return {name for name in dir(_fast) if not name.startswith("_") and its_own(getattr(_fast, name))}


def test_the_stub_lists_every_public_name_of_the_extension():
    assert stub_names() == extension_names()


def test_the_extension_defines_what_the_platform_modules_use():
    assert {"send_buffer", "tcp_info", "process_sockets_linux", "rtnl_interfaces",
            "DestroyListener", "TcpSampler", "json_objects"} <= extension_names()
