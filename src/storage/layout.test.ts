// storage-layout.json as Dominator's parser reads it: FileSystemType as text or number, every
// field of Dominator's StorageLayout and Partition accepted, the ones the installer does not use
// reported in notes, and Dominator's README example accepted as it is.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MiB, parseStorageLayout, parseStorageLayoutWithNotes } from './layout.ts';

const testdata = (name: string) => fs.readFileSync(path.join(import.meta.dirname, 'testdata', name), 'utf8');
const layoutWith = (partition: Record<string, unknown>) =>
  JSON.stringify({ BootDriveLayout: [{ MountPoint: '/', MinimumFreeBytes: MiB, ...partition }] });

describe('storage-layout.json as Dominator writes it', () => {
  it("accepts Dominator's README example unchanged, with nothing to note", () => {
    const { layout, notes } = parseStorageLayoutWithNotes(testdata('dominator-readme-storage-layout.json'));
    assert.deepEqual(
      layout.BootDriveLayout.map((p) => [p.MountPoint, p.FileSystemType, p.MinimumFreeBytes]),
      [
        ['/', 'ext4', 2 * 1024 * MiB],
        ['/home', 'ext4', 1024 * MiB],
        ['/var/log', 'ext4', 512 * MiB],
      ],
    );
    assert.equal(layout.ExtraMountPointsBasename, '/data/');
    assert.equal(layout.Encrypt, true);
    assert.equal(layout.UseKexec, false);
    assert.deepEqual(notes, []);
  });

  it('reads FileSystemType as text or as Go’s number (0 ext4, 1 vfat)', () => {
    const type = (t: unknown) =>
      parseStorageLayout(layoutWith({ FileSystemType: t })).BootDriveLayout[0].FileSystemType;
    assert.equal(type(0), 'ext4');
    assert.equal(type(1), 'vfat');
    assert.equal(type('vfat'), 'vfat');
    assert.equal(parseStorageLayout(layoutWith({})).BootDriveLayout[0].FileSystemType, 'ext4');
  });

  it('refuses an unknown FileSystemType, text or number, naming the field', () => {
    for (const t of ['ntfs', 'EXT4', 2, -1, 0.5, true]) {
      assert.throws(
        () => parseStorageLayout(layoutWith({ FileSystemType: t })),
        (err: Error) =>
          err.message.includes("field 'BootDriveLayout.0.FileSystemType' is invalid") &&
          err.message.includes(`${JSON.stringify(t)} is not a file-system type: use ext4, vfat or xfs`),
        `FileSystemType ${JSON.stringify(t)}`,
      );
    }
  });

  it("accepts every Partition field of Dominator's and notes the ones the installer ignores", () => {
    const { layout, notes } = parseStorageLayoutWithNotes(
      layoutWith({
        BytesPerInode: 16384,
        FileSystemLabel: 'root',
        ReservedBlocksPercentage: 1,
        RootGroupId: 100,
        RootUserId: 1000,
      }),
    );
    assert.equal(layout.BootDriveLayout[0].BytesPerInode, 16384); // Cradle passes it to mkfs
    assert.equal(layout.BootDriveLayout[0].FileSystemLabel, 'root');
    assert.deepEqual(
      notes,
      ['ReservedBlocksPercentage', 'RootGroupId', 'RootUserId'].map(
        (f) =>
          `storage-layout.json: field 'BootDriveLayout.0.${f}' (/) is for Dominator's imagetool: the installer ignores it, as Dominator's does`,
      ),
    );
  });

  it('keeps keys that are no field of Dominator’s, and notes them as ignored', () => {
    const text = JSON.stringify({ BootDriveLayout: [{ MountPoint: '/', MinimumBytes: MiB, Sise: 1 }], Encypt: true });
    assert.deepEqual(parseStorageLayoutWithNotes(text, 'l.json').notes, [
      "l.json: field 'Encypt' is not one of Dominator's (StorageLayout): ignored",
      "l.json: field 'BootDriveLayout.0.Sise' (/) is not one of Dominator's (Partition): ignored",
    ]);
  });

  it('takes null as absent, as Go does', () => {
    const layout = parseStorageLayout(
      JSON.stringify({
        BootDriveLayout: [{ MountPoint: '/', MinimumFreeBytes: MiB, FileSystemType: null, FileSystemLabel: null }],
        ExtraMountPointsBasename: null,
        Encrypt: null,
      }),
    );
    assert.equal(layout.BootDriveLayout[0].FileSystemType, 'ext4');
    assert.equal(layout.BootDriveLayout[0].FileSystemLabel, undefined);
    assert.equal(layout.ExtraMountPointsBasename, '/data/');
    assert.equal(layout.Encrypt, false);
  });

  it('refuses ignored fields of the wrong type rather than dropping them', () => {
    assert.throws(
      () => parseStorageLayout(layoutWith({ ReservedBlocksPercentage: 70000 })),
      /field 'BootDriveLayout\.0\.ReservedBlocksPercentage' is invalid/,
    );
    assert.throws(() => parseStorageLayout(layoutWith({ RootUserId: -1 })), /BootDriveLayout\.0\.RootUserId/);
  });
});
