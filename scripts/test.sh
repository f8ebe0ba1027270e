#!/usr/bin/env bash
# Install neas with its test extras (CPU torch first, so pip does not pull a CUDA build) and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0
python -m pip install -q -e '.[dev]'
python -m pytest -q
