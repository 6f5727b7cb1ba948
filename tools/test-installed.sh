#!/usr/bin/env bash
# Run the kernel-facing tests against an installed sockdiag (a wheel): from a
# copy of the tests away from this checkout, so that they import the installed
# package and its compiled extension, not the sources here.  $PYTHON (python by
# default) must have sockdiag, pytest and hypothesis installed.
# Used by tools/build-wheels.sh and by cibuildwheel (test-command).
set -euo pipefail
project=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # some tests run checks as nobody
cp -r "$project/conftest.py" "$project/pyproject.toml" "$project/tests" "$project/testsupport" "$work/"
cd "$work"
"$python" - <<'PYTHON'
import pathlib, sys
import sockdiag._fast
where = pathlib.Path(sockdiag._fast.__file__)
assert where.is_relative_to(sys.prefix), f"imported {where}, not the installed package"
print(f"testing the installed {where}")
PYTHON
# Linux's tests skip on macOS and macOS's on Linux.
"$python" -m pytest -q -p no:cacheprovider tests/test_api.py tests/test_send_buffer.py \
    tests/test_tcp_info.py tests/test_process_sockets.py tests/test_interfaces.py \
    tests/test_netlink_engine.py tests/test_events.py tests/test_darwin_platform.py
