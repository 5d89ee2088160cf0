#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what it needs, type-checks, then
# runs every test (unit tests beside the code, integration tests in test/). Root runs the tiers
# that need loop devices, mounts and device nodes; without root those are skipped, and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
echo "== format and lint (Biome: biome.json; 'node_modules/.bin/biome check --write .' fixes most)"
node_modules/.bin/biome ci --colors=off --error-on-warnings .
echo "== type check"
node_modules/.bin/tsc --noEmit -p .
echo "== tests"
node_modules/.bin/node scripts/run-tests.ts "$@"
