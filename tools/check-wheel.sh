#!/usr/bin/env bash
# Install dist/'s manylinux wheel into a fresh venv with nothing built
# (--only-binary :all:) and run the kernel-facing tests against it.  The tests
# run from a copy, away from this checkout, so that they import the installed
# package and its compiled extension, not the sources here.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
wheels=(dist/sockdiag-*-manylinux*_x86_64.whl)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # the tests run some checks as nobody

"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --only-binary :all: "${wheels[@]}" pytest hypothesis
cp -r conftest.py pyproject.toml tests testsupport "$work/"
cd "$work"
"$work/venv/bin/python" - <<'PYTHON'
import pathlib, sys
import sockdiag._fast
where = pathlib.Path(sockdiag._fast.__file__)
assert where.is_relative_to(sys.prefix), f"imported {where}, not the installed wheel"
print(f"sockdiag from the wheel: {where}")
PYTHON
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_api.py tests/test_send_buffer.py \
    tests/test_tcp_info.py tests/test_process_sockets.py tests/test_interfaces.py \
    tests/test_netlink_engine.py tests/test_events.py
