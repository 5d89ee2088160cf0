#!/usr/bin/env bash
# Cradle's main job, end to end on one machine: a cluster from one ISO. `cradle lab --head-node`
# builds the head-node ISO (the installer image, a Debian OS kit and the Cradle kit, cached after
# the first run) and boots a QEMU head node from it with two blank disks: it installs itself with
# no question (LVM across both disks), restarts into its own system, moves its database into
# PostgreSQL and serves. Then two compute nodes network-boot from the head node alone, install its
# compute node group's image, boot it and report in to it. Second, the same cluster again: the head
# node starts from its disks, an operator at its console marks the compute nodes for rebirth, and
# they reinstall over their installed systems, fetching almost nothing: the object cache at work.
# Arguments go to both runs, e.g. `scripts/demo.sh --compute 1`. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (network namespace, tap devices, QEMU)" >&2; exit 1; }
echo "== 1. cradle lab --head-node: a head node from the ISO, then the compute nodes it births"
bin/cradle lab --head-node --compute 2 "$@"
echo "== 2. cradle lab --head-node --rebirth: the head node from its disks reinstalls its compute nodes"
bin/cradle lab --head-node --compute 2 --rebirth "$@"
echo "demo: OK"
