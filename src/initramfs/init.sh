#!/bin/sh
# PID 1 of Cradle's installer image: mount the kernel's file systems, load drivers for the hardware
# found, run the installer (which reboots or kexecs the machine when done), and keep a shell on
# the console for whoever comes to look.
export PATH=/usr/sbin:/usr/bin HOME=/root TERM=linux
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
[ -d /sys/firmware/efi/efivars ] && mount -t efivarfs efivarfs /sys/firmware/efi/efivars 2>/dev/null
mkdir -p /run/cryptsetup /run/lock
# The kernel asks this helper for modules it needs (file systems, `ip link add … type bond`).
echo /usr/sbin/modprobe > /proc/sys/kernel/modprobe
echo "cradle: installer image built $(cat /build-timestamp), kernel $(uname -r), up $(cut -d' ' -f1 /proc/uptime) s"

# The second stage (Node and the installer): the squashfs the boot loader loaded after this
# initramfs (stage2.img), checked against the digest this first stage carries before anything in
# it runs, then mounted: the kernel decompresses only the pages Node reads, not all of them.
mount_second_stage() {
  modprobe -a -q $(cat /etc/installer/modules.stage2)
  if [ ! -e /stage2.squashfs ]; then
    echo "cradle: no second stage (/stage2.squashfs): the boot loader must load stage2.img after initrd.img, from the same build"
    return 1
  fi
  expected=$(cat /etc/installer/stage2.sha256)
  actual=$(sha256sum /stage2.squashfs | cut -d' ' -f1)
  if [ "$actual" != "$expected" ]; then
    echo "cradle: the second stage is not this image's (sha256 $actual, expected $expected): serve the stage2.img built with this initrd.img"
    return 1
  fi
  mount -t squashfs -o ro,loop /stage2.squashfs /usr/lib/cradle || return 1
  echo "cradle: second stage mounted, up $(cut -d' ' -f1 /proc/uptime) s"
}
# What this boot is for: Kusu's head-node setup (the head-node ISO), a shell only, or the installer.
if grep -qw cradle.setup /proc/cmdline; then
  mode=setup
elif grep -qw cradle.shell-only /proc/cmdline; then
  mode=shell
else
  mode=installer
fi
mkdir -p /run/cradle

# The second stage, then Node, beside the driver loading below, on another core. Under emulation
# (QEMU without KVM: the lab, CI) a program's first run pays for translating its machine code,
# about 3 s for Node's start under TCG; started here, that cost overlaps the drivers instead of
# following them. The installer itself starts here: it waits for /run/cradle/drivers-loaded
# before it looks at drives or interfaces. It logs to the console, ends by rebooting the machine
# unless told not to, and runs outside the console shell's session (as Dominator's does), so
# Ctrl-C on the console never reaches it. For the setup and the shell, Node runs once, so that
# their start finds its code translated.
(
  mount_second_stage || exit 1
  if [ "$mode" = installer ]; then
    (
      /usr/bin/cradle installer --wait-for /run/cradle/drivers-loaded </dev/null
      echo "cradle: the installer exited with status $?"
    ) &
  else
    /usr/bin/cradle --version >/dev/null 2>&1 &
  fi
) &
second_stage=$!

# Drivers: what the installer always needs first, then whatever hardware is present (coldplug:
# each device's modalias names its driver). Repeat until no new device appears (a driver can add
# devices with drivers of their own, e.g. virtio_pci then virtio_blk).
modprobe -a -q $(cat /etc/installer/modules.early)
seen=
while :; do
  aliases=$(cat /sys/bus/*/devices/*/modalias 2>/dev/null | sort -u)
  [ "$aliases" = "$seen" ] && break
  seen=$aliases
  modprobe -a -q -b $aliases 2>/dev/null
done
ip link set lo up
echo "cradle: drivers loaded, up $(cut -d' ' -f1 /proc/uptime) s"
touch /run/cradle/drivers-loaded

if ! wait $second_stage; then
  echo "cradle: Cradle cannot run without its second stage; the shell is yours"
elif [ "$mode" = setup ]; then
  # The head-node ISO (Kusu's head-node installer): `cradle setup` runs on the console, where it may
  # ask its questions, from the medium it booted from (found by its label; a CD drive may take a
  # moment to appear after its driver loads).
  mkdir -p /run/cradle/media
  medium=
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    medium=$(blkid -L CRADLE_SETUP 2>/dev/null) && [ -n "$medium" ] && break
    sleep 1
  done
  if [ -n "$medium" ] && mount -t iso9660 -o ro "$medium" /run/cradle/media; then
    setsid cttyhack /usr/bin/cradle setup --media /run/cradle/media --network dhcp
    echo "cradle: the setup exited with status $?"
    # A finished install leaves this behind: restart into the head node (the disks boot before the
    # CD), unless cradle.reboot=no keeps the live system up to look at first (the setup's answers
    # as used are in /run/cradle/answers.yaml).
    if [ -e /run/cradle/reboot ]; then
      if grep -qE '(^| )cradle\.reboot=no( |$)' /proc/cmdline; then
        echo "cradle: cradle.reboot=no: not restarting into the head node $(cat /run/cradle/reboot); the shell is yours"
      else
        echo "cradle: restarting into the head node $(cat /run/cradle/reboot)"
        sync
        reboot -f
      fi
    fi
  else
    echo "cradle: the setup found no medium labelled CRADLE_SETUP: is the ISO still attached?"
  fi
fi

# A shell on the console while the installer runs and after, started again whenever it exits.
while :; do
  setsid cttyhack sh -l
  sleep 1
done
