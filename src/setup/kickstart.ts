// `/root/cradle-ks.cfg`: the head node's install as an Anaconda kickstart, written from the same
// plan, in the manner of Kusu's `kusu-ks.cfg` (language, keyboard, network, `rootpw --iscrypted`,
// time zone, the partitions and the volume group, packages, %post). Cradle installs from its own
// answer file; this is for people who know Anaconda, and says what the same install would take
// on a Red Hat system. A pure function, golden-tested.
import type { Size } from './layout.ts';
import type { SetupPlan } from './plan.ts';

const MiB = 2 ** 20;
/** Kickstart sizes are in MiB; `rest` grows. */
const sizeArgs = (s: Size) => (s === 'rest' ? '--size=1 --grow' : `--size=${Math.round(s / MiB)}`);
const diskName = (path: string) => path.replace(/^\/dev\//, '');

export function kickstart(p: SetupPlan): string {
  const out: string[] = [
    `# ${p.hostname}: the head node's install as a kickstart, written by cradle setup from its answers`,
    '# (/root/cradle-answers.yaml replays it with Cradle; this file says what Anaconda would take).',
    'text',
    `lang ${p.language}`,
    `keyboard ${p.keyboard}`,
  ];
  const n = p.network;
  for (const i of n.interfaces) {
    if (i.role === 'unused') {
      out.push(`network --device=${i.nic.mac} --onboot=no --noipv6`);
      continue;
    }
    const args = [`--device=${i.nic.mac}`, '--onboot=yes', '--noipv6'];
    if (i.ipv4 === 'dhcp') args.push('--bootproto=dhcp');
    else if (i.ipv4) args.push('--bootproto=static', `--ip=${i.ipv4.address}`, `--netmask=${i.ipv4.mask}`);
    if (i.role === 'public' && typeof i.ipv4 === 'object' && n.gateway && n.gateway !== 'dhcp')
      args.push(`--gateway=${n.gateway}`);
    if (i.role === 'public' && Array.isArray(n.dns)) args.push(`--nameserver=${n.dns.join(',')}`);
    if (i === n.interfaces.find((x) => x.role !== 'unused')) args.push(`--hostname=${p.hostname}`);
    out.push(`network ${args.join(' ')}  # ${i.nic.name}, ${i.role}`);
  }
  out.push(
    `rootpw --iscrypted ${p.rootPasswordHash}`,
    `timezone --utc ${p.timezone}`,
    'firewall --disabled',
    'selinux --disabled',
  );
  const drives = p.wipe.map((d) => diskName(d.path)).join(',');
  const first = diskName(p.wipe[0].path);
  out.push(
    `bootloader --location=mbr --boot-drive=${first}`,
    'zerombr',
    `clearpart --all --initlabel --drives=${drives}`,
    `ignoredisk --only-use=${drives}`,
  );
  let pv = 0;
  const pvNames: string[] = [];
  for (const part of p.storage.partitions) {
    const on = `--ondisk=${diskName(part.disk)}`;
    if (part.role === 'bios-boot') out.push(`part biosboot --fstype=biosboot ${sizeArgs(part.size)} ${on}`);
    else if (part.role === 'esp') out.push(`part /boot/efi --fstype=efi ${sizeArgs(part.size)} ${on}`);
    else if (part.role === 'plain')
      out.push(`part ${part.mount === 'swap' ? 'swap' : part.mount} --fstype=${part.fs} ${sizeArgs(part.size)} ${on}`);
    else {
      const name = `pv.${String(++pv).padStart(2, '0')}`;
      pvNames.push(name);
      out.push(`part ${name} ${sizeArgs(part.size)} ${on}`);
    }
  }
  const vg = p.storage.volumeGroup.name;
  out.push(`volgroup ${vg} ${pvNames.join(' ')}`);
  for (const v of p.storage.volumes)
    out.push(
      `logvol ${v.mount === 'swap' ? 'swap' : v.mount} --vgname=${vg} --name=${v.name} --fstype=${v.fs} ${sizeArgs(v.size)}`,
    );
  const sub = n.provisioning.subnet;
  out.push(
    '',
    '%packages',
    '@core',
    'postgresql-server',
    '%end',
    '',
    '%post',
    '# What Cradle does after the install, as Kusu did in its own %post: the kits go to /depot, node',
    '# groups are made, the machine database and the setup logs are carried into the new system.',
    `# The provisioning network: ${n.provisioning.nic} ${n.provisioning.address}, pool ${sub.pool?.start}-${sub.pool?.end}.`,
    `# Node groups: ${p.nodeGroups === 'default' ? 'compute, from the first OS kit' : p.nodeGroups.map((g) => g.name).join(', ')}.`,
    // Kusu's addhost in its pre-populate mode: the nodes are in the machine database before they boot.
    ...p.nodes.map(
      (node) =>
        `# Node ${node.hostname}: MAC ${node.mac}, ${node.ip ?? 'a pool address'}, node group ${node.nodeGroup}, state birth.`,
    ),
    '%end',
    '',
  );
  return out.join('\n');
}
