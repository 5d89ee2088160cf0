#!/usr/bin/env bash
# Installs what Cradle needs on a fresh Debian 12 machine: Debian packages first, then npm packages
# (which bring the pinned Node.js 26 runtime). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages, by the part of Cradle that needs them.
DEBS=(
  attr acl        # setfattr, setfacl: test fixtures (Cradle itself reads xattrs through libc)
  libcap2-bin     # setcap: test fixtures
  zstd            # peer in benchmarks (tar -I zstd)
  tar curl        # peers in benchmarks
  nginx-light     # peer in the 32-client benchmark
  mmdebstrap      # builds the Debian root file systems used in round-trip tests and benches
  e2fsprogs       # mkfs.ext4 for loop-device tests
  umoci           # builds real OCI image layouts in tests
  fdisk util-linux  # sfdisk, partx, blkdiscard, losetup: the installer's storage steps
  cryptsetup-bin    # LUKS2 for encrypted file systems
  lvm2              # the head node's volume group (cradle setup; the installer image carries lvm)
  xfsprogs dosfstools  # mkfs.xfs, mkfs.vfat (the ESP)
  iproute2          # ip: the installer's network, and test namespaces
  dnsmasq-base      # DHCP and TFTP server: the peer in DHCP and TFTP client tests
  tftp-hpa          # a TFTP client: a peer of our TFTP server
  isc-dhcp-client   # dhclient: a peer of our DHCP server
  postgresql        # the machine database's PostgreSQL backend, tested against a real server
  qemu-system-x86 ipxe-qemu ipxe linux-image-amd64   # PXE boot tests: a guest's iPXE ROM, iPXE for TFTP chainloading, a kernel
  busybox-static    # udhcpc: a second DHCP client checking the test setup (static: also the installer image's shell)
  kexec-tools efibootmgr kmod binutils   # the installer image: kexec, efibootmgr, depmod and modprobe for its modules, strip for its Node
  icu-devtools      # icupkg: the installer image keeps only the root and English of Node's ICU data
  squashfs-tools    # mksquashfs: the installer image's second stage (Node and the installer); unsquashfs reads it back in its test
  grub-pc-bin grub-efi-amd64-bin grub2-common   # the tiny test OS's boot loader, and the installer ISO's
  xorriso mtools    # the installer ISO (grub-mkrescue)
  ovmf              # UEFI firmware for the lab's and the VM tests' machines
  cpio              # reads the installer image back in its test
  ca-certificates openssl   # openssl: test certificates for the TLS tests
  chromium fonts-dejavu-core  # headless browser for the web pages' tests (driven by playwright-core)
  kea-dhcp4-server kea-admin  # peers in the DHCP benchmark: Kea, and ISC's perfdhcp (in kea-admin) driving it and ours
  nghttp2-client wrk  # h2load and wrk: load for the image server's GET benchmark (nginx the peer)
  hyperfine         # times the CLI's start-up in its benchmark
)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, exactly as locked. The `node` package pins the runtime (node_modules/.bin/node).
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
