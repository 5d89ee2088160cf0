// The add-on component the kit tests, the node-group VM test and its benchmark share: a file and
// a systemd unit enabled by its symlink, the way a kit enables a service. At boot the unit prints
// the file on the console, so a VM test sees both arrived and the unit ran.
import fs from 'node:fs';
import path from 'node:path';

export const HELLO_CONF = 'from-the-hello-kit';

const UNIT = `[Unit]
Description=The hello kit's service
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "CRADLE-HELLO-KIT: $(cat /etc/hello-kit.conf)"'
StandardOutput=journal+console
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
`;

/** Writes the component's tree at `root` and returns it. */
export function helloTree(root: string): string {
  const wants = path.join(root, 'etc/systemd/system/multi-user.target.wants');
  fs.mkdirSync(wants, { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/hello-kit.conf'), `${HELLO_CONF}\n`);
  fs.writeFileSync(path.join(root, 'etc/systemd/system/hello-kit.service'), UNIT);
  fs.symlinkSync('../hello-kit.service', path.join(wants, 'hello-kit.service'));
  return root;
}

/**
 * Builds an OS kit `demo/12` (debian-12) from `osImage` and the add-on `hello/1.0` (its component
 * for the compute group) in `dir`, and adds both to the depot `cradle` is pointed at.
 */
export async function addDemoAndHelloKits(
  cradle: (...args: string[]) => Promise<unknown>,
  dir: string,
  osImage: string,
): Promise<void> {
  const hello = helloTree(path.join(dir, 'hello-tree'));
  const kit = (name: string, version: string, ...rest: string[]) =>
    cradle('kit', 'build', '--out', path.join(dir, `${name}.kit`), '--name', name, '--version', version, ...rest);
  await kit('demo', '12', '--kind', 'os', '--os', 'debian-12', '--image', osImage);
  await kit('hello', '1.0', '--kind', 'addon', '--component', `hello:compute:${hello}:debian-12`);
  await cradle('kit', 'add', path.join(dir, 'demo.kit'));
  await cradle('kit', 'add', path.join(dir, 'hello.kit'));
}
