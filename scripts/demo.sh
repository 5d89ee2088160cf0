#!/usr/bin/env bash
# Cradle's main job, end to end on one machine: `cradle lab` builds the installer image and a
# Debian demo OS image (both cached after the first run), starts the boot server and the image
# server in a network namespace, and powers on QEMU machines with blank disks. They PXE-boot,
# install, boot into the installed Debian, which reports in. Then the same machines are reborn
# over their installed systems, fetching almost nothing: the object cache at work.
# Arguments go to both runs, e.g. `scripts/demo.sh --machines 1 --image tiny`. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (network namespace, tap devices, QEMU)" >&2; exit 1; }
echo "== 1. cradle lab: power on machines with blank disks"
bin/cradle lab "$@"
echo "== 2. cradle lab --rebirth: reinstall the same machines over their installed systems"
bin/cradle lab --rebirth "$@"
echo "demo: OK"
