// The DHCP server's outward shapes: what it is started with, what it counts, what it tells about
// a machine it does not know. Shared by server.ts and the modules it is made of.
import type { Inventory } from '../../inventory/types.ts';
import type { DhcpServerConfig, Firmware } from './policy-types.ts';

export interface UnknownMachineInfo {
  /** The interface it asked on, or undefined when relayed. */
  interface?: string;
  relay?: string;
  subnetId?: string;
  /** Whether it was answered (unknownMachines 'lease'/'birth' and a pool with room). */
  served: boolean;
  firmware?: Firmware;
  arch?: number;
}

export interface DhcpServerOptions {
  interfaces: string[];
  inventory: Inventory;
  config: DhcpServerConfig;
  log?: (line: string) => void;
  /** Called once a minute at most per MAC when a MAC not in the inventory sends a DISCOVER. */
  onUnknownMachine?: (mac: string, info: UnknownMachineInfo) => Promise<void>;
}

export interface DhcpServerStats {
  received: number;
  malformed: number;
  /** Decoded, but the policy answered nothing. */
  unanswered: number;
  offers: number;
  acks: number;
  naks: number;
  relayed: number;
  /** Inventory or send failures. */
  errors: number;
  /** Dropped unanswered under load: the queue was full, or they waited too long (receive-queue.ts). */
  shed: number;
}

export interface DhcpServer {
  start(): Promise<void>;
  close(): Promise<void>;
  readonly stats: DhcpServerStats;
}

/** Where a request came in: a served link's packet socket, or a UDP socket (relays, PXE port 4011). */
export type Via = { kind: 'link'; ifname: string } | { kind: 'udp'; port: number; source: string; sourcePort: number };
