// The DHCP policy's contract, types only: its configuration (DhcpServerConfig), what the server
// tells it about one request (PolicyContext), and what it decides (Decision: the reply, where it
// goes, and the side effects for the server to apply). Firmware is here because both ends name it.
import type { Lease, Machine, Subnet } from '../../inventory/types.ts';
import type { DhcpPacketInit } from '../../protocols/dhcp/packet.ts';

export interface DhcpServerConfig {
  /** 'server' hands out addresses; 'proxy' (proxyDHCP) only adds boot information for PXE clients. Default 'server'. */
  mode?: 'server' | 'proxy';
  /** MACs not in the inventory: 'ignore' (default), 'lease' (pool address only), 'birth' (pool address + installer). */
  unknownMachines?: 'ignore' | 'lease' | 'birth';
  /** Reservations; default 172800 (48 h, as the original). */
  staticLeaseSeconds?: number;
  /** Pool leases; default 14400 (4 h, as the original). */
  poolLeaseSeconds?: number;
  /** How long an offered pool address is held for the client's REQUEST; default 60. */
  offerHoldSeconds?: number;
  /** NAK requests for addresses we know are not the client's even without a record of it; default true. */
  authoritative?: boolean;
  /** TFTP server (siaddr, option 66); default the server's own address on that network. */
  tftpServer?: string;
  /** Base of the HTTP boot server; default http://<server address>:6977. */
  httpBootUrl?: string;
  /** iPXE binaries served by TFTP, by firmware. */
  bootFiles?: Partial<Record<Firmware, string>>;
}

export type Firmware = 'bios' | 'uefi32' | 'uefi64' | 'arm64';

export interface PolicyContext {
  /** Our address on the network the request came from (server identifier, default siaddr). */
  serverIp: string;
  /** The subnet of the receiving interface, or the one containing giaddr for relayed requests. */
  interfaceSubnet?: Subnet;
  /** The machine whose macs include chaddr. */
  machine?: Machine;
  /** The lease the inventory holds for chaddr (any subnet, possibly expired). */
  lease?: Lease;
  /** Set when allocateLease was asked (leaseWanted) and gave nothing: the pool is exhausted. */
  leaseUnavailable?: boolean;
  /** UDP port the request came to: 67, or 4011 (PXE boot-server requests of proxyDHCP clients). */
  port?: number;
  /** The request's source, for port 4011 replies. */
  source?: { ip: string; port: number };
  now: Date;
  config: DhcpServerConfig;
}

export type Destination =
  | { kind: 'broadcast' } // 255.255.255.255:68 as an Ethernet broadcast on the receiving interface
  | { kind: 'unicast'; ip: string; mac: string } // ip:68 sent straight to the client's MAC (no ARP needed)
  | { kind: 'relay'; ip: string } // giaddr:67 over UDP, the relay delivers it
  | { kind: 'source'; ip: string; port: number }; // back to where a port-4011 request came from

export interface Decision {
  reply?: DhcpPacketInit;
  to?: Destination;
  /** allocateLease(mac, subnetId, seconds, now, hostname), then ask again with the lease. */
  leaseWanted?: { subnetId: string; seconds: number; hostname?: string };
  releaseLease?: boolean;
  /** An address the client found in use (DECLINE): keep it out of offers. */
  declined?: string;
  /** An unknown MAC asked (DISCOVER): for the caller to register (state birth) or report. */
  unknownMachine?: { mac: string; subnetId?: string; served: boolean; firmware?: Firmware; arch?: number };
  /** What the request taught us about a known machine (option 93). */
  machinePatch?: { firmware: 'bios' | 'uefi' };
  log: string;
}
