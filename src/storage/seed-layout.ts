// Dominator's default storage-layout.json (its installer README): what a machine installs with when
// neither it nor its node group has a layout and the operator named none (--default-layout).
// `cradle server` keeps a copy of its own (src/cli/server.ts); both must stay this value.
export const SEED_DEFAULT_LAYOUT: Record<string, unknown> = {
  BootDriveLayout: [
    { FileSystemType: 'ext4', MountPoint: '/', MinimumFreeBytes: 2147483648 },
    { FileSystemType: 'ext4', MountPoint: '/home', MinimumFreeBytes: 1073741824 },
    { FileSystemType: 'ext4', MountPoint: '/var/log', MinimumFreeBytes: 536870912 },
  ],
  ExtraMountPointsBasename: '/data/',
  Encrypt: true,
  UseKexec: false,
};
