// The machine database's contract: machines, subnets, their states with history, DHCP leases and
// installer progress. One interface, two stores (SQLite embedded by default, PostgreSQL for fleets
// where several boot servers share one database); the DHCP, TFTP and HTTP servers and the CLI see
// only this.

/** The "Machine Birthing" states: what a machine's next network boot does. */
export const MACHINE_STATES = ['unknown', 'birth', 'installing', 'healthy', 'rebirth', 'clean', 'failed'] as const;
export type MachineState = (typeof MACHINE_STATES)[number];

/**
 * One interface of a machine as Dominator's NetworkEntry describes it (config.json's
 * SecondaryNetworkEntries and IPMI): an address with its MAC, an address on a VLAN of the trunk
 * (no MAC), or a bridge to a managed subnet (MAC and subnet, no address).
 */
export interface NetworkEntry {
  hostname?: string;
  ip?: string;
  mac?: string;
  subnetId?: string;
  /** This interface carries the trunk's VLANs (Dominator's VlanTrunk). */
  vlanTrunk?: boolean;
}

/** The machine's BMC: a NetworkEntry, as in Dominator. */
export type Ipmi = NetworkEntry;

/** Dominator's MachineData: the hardware as the fleet knows it; kept and served, not used. */
export interface Hardware {
  architecture?: 'auto' | 'amd64' | 'arm64';
  memoryMiB?: number;
  cpus?: number;
  totalVolumeBytes?: number;
}

export interface Machine {
  hostname: string;
  /** Lower-case, colon-separated; the first is the primary (boot) interface. */
  macs: string[];
  /** Static address; absent for machines that get one from a subnet's pool. */
  ip?: string;
  /** The subnet `ip` belongs to (Dominator's Subnets[].Id). */
  subnetId?: string;
  /**
   * Set by the store when `subnetId` was found by matching `ip` against the subnets rather than
   * named: config.json then leaves Machine.SubnetId out, as the file it came from did.
   */
  subnetMatched?: boolean;
  /** The primary interface carries the trunk's VLANs (Dominator's Machine.VlanTrunk). */
  vlanTrunk?: boolean;
  /** Its other interfaces (Dominator's SecondaryNetworkEntries); each MAC is also in `macs`. */
  secondaryNetworkEntries?: NetworkEntry[];
  /** The subnet whose gateway is the default route, overriding the one `ip` is in. */
  gatewaySubnetId?: string;
  ipmi?: Ipmi;
  /** Dominator's Machine.Location. */
  location?: string;
  /** config.json's own Location (Dominator's fleet manager: the machine's topology directory). */
  topologyLocation?: string;
  ownerGroups?: string[];
  ownerUsers?: string[];
  hardware?: Hardware;
  /** Free-form tags; `RequiredImage` names the image (or stream) to install. */
  tags: Record<string, string>;
  /** Dominator's storage-layout.json for this machine; absent means the server default. */
  storageLayout?: Record<string, unknown>;
  /** The node group it belongs to: its image and layout, unless the machine names its own. */
  nodeGroup?: string;
  /** UEFI or BIOS, as last seen in DHCP option 93; absent until seen. */
  firmware?: 'uefi' | 'bios';
  state: MachineState;
  /** ISO 8601. */
  stateChangedAt: string;
  createdAt: string;
}

export type NewMachine = Omit<Machine, 'state' | 'stateChangedAt' | 'createdAt' | 'subnetMatched'> & {
  state?: MachineState;
};
export type MachinePatch = Partial<
  Omit<Machine, 'hostname' | 'state' | 'stateChangedAt' | 'createdAt' | 'subnetMatched'>
>;

export interface Subnet {
  /** Dominator's Subnets[].Id, e.g. "Hypervisors". */
  id: string;
  gateway: string;
  mask: string;
  domainName?: string;
  dnsServers: string[];
  /** Dominator's Manage: a VLAN and bridge are made for it on installed machines. */
  manage: boolean;
  vlanId?: number;
  /**
   * Addresses handed to unknown machines (state birth), inclusive; none: unknown machines get
   * nothing. Dominator's FirstDynamicIP and LastDynamicIP.
   */
  pool?: { start: string; end: string };
  /** Dominator's DisableMetadata: no metadata server for its machines (kept and served). */
  disableMetadata?: boolean;
  /** Dominator's AllowedGroups and AllowedUsers: who may place VMs in it (kept and served). */
  allowedGroups?: string[];
  allowedUsers?: string[];
  tags?: Record<string, string>;
}

/** A kit as a node group pins it: the digest is the kit's identity (its kit.json's digest). */
export interface KitPin {
  name: string;
  version: string;
  digest: string;
}

/** Kusu's node group: what its machines install (an OS kit's image with components on top), and how. */
export interface NodeGroup {
  name: string;
  description: string;
  osKit: KitPin;
  /** Components from kits (add-on kits, or the OS kit's own), layered in this order. */
  components: (KitPin & { component: string })[];
  /** storage-layout.json for its machines; absent means the boot server's default. */
  storageLayout?: Record<string, unknown>;
  /** Installer flags for its machines, `NAME` or `NAME=VALUE` (passed as cradle.NAME=VALUE). */
  installerFlags: string[];
  /** ISO 8601. */
  createdAt: string;
  updatedAt: string;
}

export type NewNodeGroup = Omit<NodeGroup, 'createdAt' | 'updatedAt' | 'description' | 'installerFlags'> &
  Partial<Pick<NodeGroup, 'description' | 'installerFlags'>>;
export type NodeGroupPatch = Partial<Omit<NodeGroup, 'name' | 'createdAt' | 'updatedAt'>>;

export interface StateChange {
  hostname: string;
  from: MachineState;
  to: MachineState;
  /** ISO 8601. */
  at: string;
  reason: string;
}

export interface Lease {
  mac: string;
  ip: string;
  hostname?: string;
  subnetId: string;
  /** ISO 8601. */
  expiresAt: string;
}

/** The newest progress of a machine's installer (from the events of docs/installer-events.md). */
/** How an install ended, with the installer's summary of the run when it sent one. */
export interface InstallResult {
  ok: boolean;
  error?: string;
  seconds?: number;
  phaseSeconds?: Record<string, number>;
  /** Objects and bytes taken from the old system's cache vs fetched from the image server. */
  objects?: { objectsFromCache: number; bytesFromCache: number; objectsFetched: number; bytesFetched: number };
}

export interface InstallProgress {
  hostname: string;
  phase: string;
  bytesDone?: number;
  bytesTotal?: number;
  etaSeconds?: number | null;
  bytesPerSecond?: number;
  result?: InstallResult;
  /** ISO 8601. */
  updatedAt: string;
}

export class InventoryError extends Error {
  override name = 'InventoryError';
}

/** Thrown for a name, MAC or address that already exists. */
export class ConflictError extends InventoryError {
  override name = 'ConflictError';
}

export class NotFoundError extends InventoryError {
  override name = 'NotFoundError';
}

export interface Inventory {
  addMachine(m: NewMachine): Promise<Machine>;
  updateMachine(hostname: string, patch: MachinePatch): Promise<Machine>;
  removeMachine(hostname: string): Promise<void>;
  getMachine(hostname: string): Promise<Machine | undefined>;
  findMachineByMac(mac: string): Promise<Machine | undefined>;
  /** The machine whose own (primary, static) address is `ip`; not its other interfaces', nor a lease's. */
  findMachineByIp(ip: string): Promise<Machine | undefined>;
  listMachines(filter?: { state?: MachineState; tag?: [string, string]; nodeGroup?: string }): Promise<Machine[]>;
  /** Moves a machine to `to`, recording the change; a no-op change is not recorded. */
  setState(hostname: string, to: MachineState, reason: string): Promise<Machine>;
  history(hostname: string): Promise<StateChange[]>;

  addSubnet(s: Subnet): Promise<Subnet>;
  getSubnet(id: string): Promise<Subnet | undefined>;
  listSubnets(): Promise<Subnet[]>;
  removeSubnet(id: string): Promise<void>;

  /**
   * The lease for `mac` in `subnetId`: its current one if any, else a free pool address, taken
   * atomically (several boot servers may share one PostgreSQL database). Undefined when the pool
   * is exhausted or the subnet has none.
   */
  allocateLease(
    mac: string,
    subnetId: string,
    leaseSeconds: number,
    now: Date,
    hostname?: string,
  ): Promise<Lease | undefined>;
  getLease(mac: string): Promise<Lease | undefined>;
  listLeases(): Promise<Lease[]>;
  releaseLease(mac: string): Promise<void>;

  addNodeGroup(g: NewNodeGroup): Promise<NodeGroup>;
  /** Fields present in `patch` replace the group's; `storageLayout: undefined` clears it. */
  updateNodeGroup(name: string, patch: NodeGroupPatch): Promise<NodeGroup>;
  getNodeGroup(name: string): Promise<NodeGroup | undefined>;
  listNodeGroups(): Promise<NodeGroup[]>;
  /** Refused while machines belong to it, naming them. */
  removeNodeGroup(name: string): Promise<void>;
  /** The node groups that use a kit (as their OS kit or for a component), by name. */
  nodeGroupsUsingKit(name: string, version: string): Promise<string[]>;

  recordProgress(p: InstallProgress): Promise<void>;
  getProgress(hostname: string): Promise<InstallProgress | undefined>;
  /** The installer's log lines of the machine's latest run, from `firstSeq` on (resends are ignored). */
  appendInstallerLog(hostname: string, firstSeq: number, lines: string[]): Promise<void>;
  installerLog(hostname: string, sinceSeq?: number, limit?: number): Promise<{ seq: number; line: string }[]>;
  /** A new run starts: the last run's log goes. */
  clearInstallerLog(hostname: string): Promise<void>;

  close(): Promise<void>;
}
