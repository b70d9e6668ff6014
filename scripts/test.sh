#!/usr/bin/env bash
# Runs berth's whole test suite. Needs root: the tests create real namespaces,
# cgroups, overlay mounts and containers (each under a private temp root).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --workspace --all-targets
cargo nextest run --workspace --no-fail-fast --failure-output final "$@"
