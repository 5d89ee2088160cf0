#!/usr/bin/env bash
# Cradle's main job, end to end on one machine (until the lab with PXE-booting VMs exists): build a
# Debian image with mmdebstrap, add it to a store, serve it with `cradle imageserver` on loopback,
# list it and `load-image` it into a directory as the installer would, then chroot into the result
# to show it is a working OS tree. Needs root (owners, device nodes, chroot mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it restores owners and device nodes and bind-mounts /proc)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/cradle-demo.XXXXXX)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  for m in dev proc sys tmp; do umount -l "$work/target/$m" 2>/dev/null || true; done
  # --one-file-system: never recurse into a mount (a bind of the host's /dev or /tmp) left behind.
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
cradle() { bin/cradle "$@"; }

echo "== 1. a Debian root file system (mmdebstrap, cached after the first run)"
rootfs=$(node_modules/.bin/node src/lab/debian-rootfs.ts)
echo "$rootfs"

echo "== 2. cradle image add"
name="demo/$(date -u +%Y-%m-%d:%H:%M:%S)"
cradle image add --store "$work/store" "$name" "$rootfs"

echo "== 3. cradle imageserver (loopback)"
port=$(node_modules/.bin/node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
bin/cradle imageserver --store "$work/store" --listen 127.0.0.1 --port "$port" &
server_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
export CRADLE_IMAGESERVER="127.0.0.1:$port"

echo "== 4. cradle installer list-images"
cradle installer list-images

echo "== 5. cradle installer load-image demo (the stream: its latest image)"
cradle installer load-image demo "$work/target"

echo "== 6. the unpacked OS works: chroot into it"
chroot "$work/target" /bin/sh -c 'echo "Debian $(cat /etc/debian_version) in a chroot"; ls -l /usr/bin/su; getcap /usr/bin/ping; ping -V'

echo "== 7. reinstall with the previous tree as object cache"
cradle installer load-image --no-mounts --cache-from "$work/target" demo "$work/target2"
echo "demo: OK"
