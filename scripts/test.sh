#!/usr/bin/env bash
# Install neas with its test extras (CPU torch first, so pip does not pull a CUDA build) and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0
python -m pip install -q -e '.[dev]'
# One pytest worker per core, at most 4 (each test file on one worker: its fixtures are built
# once); NEAS_TEST_WORKERS overrides. Every test runs torch at one thread.
workers="${NEAS_TEST_WORKERS:-$(nproc 2>/dev/null || echo 1)}"
if [ "$workers" -gt 4 ]; then workers=4; fi
python -m pytest -q -n "$workers" --dist loadfile
