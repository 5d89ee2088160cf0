wipefs --all --force /dev/sda
sfdisk --wipe always --no-reread /dev/sda <<EOF
label: gpt
device: /dev/sda
unit: sectors

/dev/sda1 : start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name="bios-boot"
/dev/sda2 : start=4096, size=2097152, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="boot"
/dev/sda3 : start=2101248, size=935598080, type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name="pv"
EOF
partx --update /dev/sda
lvm pvcreate --yes --force --force /dev/sda3
lvm vgcreate --yes cradle /dev/sda3
lvm lvcreate --yes --wipesignatures y --size 2048m --name swap cradle
lvm lvcreate --yes --wipesignatures y --size 16384m --name root cradle
lvm lvcreate --yes --wipesignatures y --size 4096m --name var cradle
lvm lvcreate --yes --wipesignatures y --size 4096m --name home cradle
lvm lvcreate --yes --wipesignatures y --extents 100%FREE --name depot cradle
lvm vgchange --activate y cradle
mkfs.ext4 -q -F -L boot /dev/sda2
mkswap -L swap /dev/cradle/swap
mkfs.ext4 -q -F -L root /dev/cradle/root
mkfs.ext4 -q -F -L var /dev/cradle/var
mkfs.ext4 -q -F -L home /dev/cradle/home
mkfs.ext4 -q -F -L depot /dev/cradle/depot
mkdir -p /target
mount -t ext4 /dev/cradle/root /target
mkdir -p /target/boot
mount -t ext4 /dev/sda2 /target/boot
mkdir -p /target/var
mount -t ext4 /dev/cradle/var /target/var
mkdir -p /target/home
mount -t ext4 /dev/cradle/home /target/home
mkdir -p /target/depot
mount -t ext4 /dev/cradle/depot /target/depot
