"""Helpers shared by tests/ and bench/: real loopback connections (loopback),
child processes (children), synthetic macOS kernel buffers (darwin_buffers)
and the bench's timing (benchmarks).

Importable from both because the repository's root conftest.py puts the
root on sys.path (pytest does so for a rootdir conftest), and in the Python
children that children.python_child starts (it puts the root on PYTHONPATH).
"""
