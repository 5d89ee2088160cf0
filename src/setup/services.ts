// What a head node runs once installed: where Cradle keeps its things in the new system, the
// services (systemd units shipped in this repository's systemd/ and carried by the Cradle kit),
// and their settings, one environment file written by `cradle setup` from the plan and changed
// once by the first boot (the database moved into PostgreSQL). Pure text in and out, golden-tested.
import type { SetupPlan } from './plan.ts';

/** Where the new system keeps what Cradle made for it. */
export const HEAD_PATHS = {
  depot: '/depot',
  db: '/var/lib/cradle/inventory.db',
  ca: '/etc/cradle/ca',
  /** Every CA whose client certificates are operators' (the site's, and the answers' operators.ca). */
  operatorCa: '/etc/cradle/ca/operators.pem',
  serverTls: '/etc/cradle/tls/server',
  installerTls: '/etc/cradle/tls/installer',
  /** The head node's own operator: its `cradle` and curl reach the machine API and the dashboard. */
  operatorTls: '/etc/cradle/tls/operator',
  answers: '/root/cradle-answers.yaml',
  kickstart: '/root/cradle-ks.cfg',
  log: '/var/log/cradle/setup.log',
  /** The services' settings (systemd's EnvironmentFile=). */
  env: '/etc/cradle/head-node.env',
  /** Written when the first boot has run; the unit does not run again while it is there. */
  firstBootDone: '/var/lib/cradle/first-boot.done',
} as const;

/** The head node's units, in the order they start; each is enabled by the install. */
export const HEAD_UNITS = ['cradle-first-boot.service', 'cradle-server.service', 'cradle-imageserver.service'];

/** The settings of the head node's services, from the plan. */
export function headNodeEnv(plan: SetupPlan, defaultImage: string): string {
  const p = plan.network.provisioning;
  const settings: [string, string, string][] = [
    ['CRADLE_DB', `sqlite:${HEAD_PATHS.db}`, 'the machine database (PostgreSQL after the first boot)'],
    ['CRADLE_INTERFACE', p.nic, 'the provisioning network: DHCP, TFTP and HTTP boot answer only here'],
    ['CRADLE_ADDRESS', p.address, "the head node's address on it, as compute nodes reach it"],
    ['CRADLE_DEPOT', HEAD_PATHS.depot, 'kits and node group images'],
    ['CRADLE_DEFAULT_IMAGE', defaultImage, 'installed on machines in no node group'],
    ['CRADLE_UNKNOWN_MACHINES', 'ignore', 'MACs not in the database: ignore, lease or birth'],
    ['CRADLE_TLS', HEAD_PATHS.serverTls, "the servers' certificate and key (cert.pem, key.pem)"],
    ['CRADLE_CA', `${HEAD_PATHS.ca}/ca.pem`, "the site's CA: installers and operators need its client certificates"],
    ['CRADLE_INSTALLER_TLS', HEAD_PATHS.installerTls, 'the certificate the installer image carries'],
    [
      'CRADLE_OPERATOR_CA',
      HEAD_PATHS.operatorCa,
      "CAs whose client certificates are operators' too (API and dashboard), never the installer's",
    ],
  ];
  return [
    `# The head node ${plan.hostname}'s services (cradle-server, cradle-imageserver), written by cradle setup.`,
    '# systemd reads it (EnvironmentFile=); every cradle command on this host takes its CRADLE_DB by default.',
    ...settings.flatMap(([k, v, why]) => [`# ${why}`, `${k}=${v}`]),
    '',
  ].join('\n');
}

/** The settings of an environment file, comments and blank lines left out. */
export function readEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/** The file with one setting changed in place, its comments and order kept. */
export function withEnv(text: string, key: string, value: string): string {
  if (/[\n\s"'\\$]/.test(value)) throw new Error(`${key}: '${value}' cannot be written unquoted in ${HEAD_PATHS.env}`);
  const re = new RegExp(`^${key}=.*$`, 'm');
  return re.test(text) ? text.replace(re, `${key}=${value}`) : `${text.replace(/\n?$/, '\n')}${key}=${value}\n`;
}
