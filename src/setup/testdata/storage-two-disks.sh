wipefs --all --force /dev/vda
wipefs --all --force /dev/vdb
sfdisk --wipe always --no-reread /dev/vda <<EOF
label: gpt
device: /dev/vda
unit: sectors

/dev/vda1 : start=2048, size=1048576, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"
/dev/vda2 : start=1050624, size=2097152, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="boot"
/dev/vda3 : start=3147776, size=59764736, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name="pv"
EOF
sfdisk --wipe always --no-reread /dev/vdb <<EOF
label: gpt
device: /dev/vdb
unit: sectors

/dev/vdb1 : start=2048, size=62910464, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name="pv"
EOF
partx --update /dev/vda
partx --update /dev/vdb
lvm pvcreate --yes --force --force /dev/vda3 /dev/vdb1
lvm vgcreate --yes cradle /dev/vda3 /dev/vdb1
lvm lvcreate --yes --wipesignatures y --size 2048m --name swap cradle
lvm lvcreate --yes --wipesignatures y --size 16384m --name root cradle
lvm lvcreate --yes --wipesignatures y --size 4096m --name var cradle
lvm lvcreate --yes --wipesignatures y --size 4096m --name home cradle
lvm lvcreate --yes --wipesignatures y --extents 100%FREE --name depot cradle
lvm vgchange --activate y cradle
mkfs.vfat -F 32 -n ESP /dev/vda1
mkfs.ext4 -q -F -L boot /dev/vda2
mkswap -L swap /dev/cradle/swap
mkfs.ext4 -q -F -L root /dev/cradle/root
mkfs.ext4 -q -F -L var /dev/cradle/var
mkfs.ext4 -q -F -L home /dev/cradle/home
mkfs.ext4 -q -F -L depot /dev/cradle/depot
mkdir -p /target
mount -t ext4 /dev/cradle/root /target
mkdir -p /target/boot
mount -t ext4 /dev/vda2 /target/boot
mkdir -p /target/var
mount -t ext4 /dev/cradle/var /target/var
mkdir -p /target/home
mount -t ext4 /dev/cradle/home /target/home
mkdir -p /target/depot
mount -t ext4 /dev/cradle/depot /target/depot
mkdir -p /target/boot/efi
mount -t vfat /dev/vda1 /target/boot/efi
