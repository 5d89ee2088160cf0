// Sending the DHCP server's answers the way the decision says (policy-types.ts Decision.to): to
// a relay agent or a PXE client over UDP; to a client on a served link as an Ethernet frame
// through that interface's packet socket, unicast to its MAC or broadcast (a client without an
// address can be unicast to without ARP, RFC 2131 4.1); to a client that asked over UDP, over UDP.
import type dgram from 'node:dgram';
import type { Decision } from './policy-types.ts';
import { BROADCAST_MAC, PacketSender } from '../../protocols/dhcp/socket.ts';
import type { UdpDatagram } from '../../protocols/dhcp/udp-ipv4.ts';
import type { Via } from './types.ts';

export class ReplySender {
  /** Port 67 (relays; absent in proxy mode when another server holds it) and 4011 (PXE). */
  udp67: dgram.Socket | undefined;
  udp4011: dgram.Socket | undefined;
  private readonly links = new Map<string, PacketSender>();
  private readonly failed: (why: string) => void;

  /** `failed` hears of a send that failed (counted and logged by the server). */
  constructor(failed: (why: string) => void) {
    this.failed = failed;
  }

  /** Opens the packet socket that answers clients on `ifname`. */
  addLink(ifname: string): void {
    this.links.set(ifname, new PacketSender(ifname));
  }

  send(buf: Buffer, d: Decision, via: Via, serverIp: string): void {
    const to = d.to!;
    const udpSend = (sock: dgram.Socket | undefined, port: number, ip: string) => {
      if (!sock) throw new Error(`no UDP socket to reach ${ip}:${port}`);
      sock.send(buf, port, ip, (err) => {
        if (err) this.failed(`sending to ${ip}:${port} failed: ${err.message}`);
      });
    };
    if (to.kind === 'relay') return udpSend(this.udp67, 67, to.ip);
    if (to.kind === 'source') return udpSend(this.udp4011, to.port, to.ip);
    if (via.kind !== 'link')
      return udpSend(this.udp4011 ?? this.udp67, 68, to.kind === 'unicast' ? to.ip : '255.255.255.255');
    const datagram: UdpDatagram = {
      source: serverIp,
      destination: to.kind === 'unicast' ? to.ip : '255.255.255.255',
      sourcePort: 67,
      destinationPort: 68,
      payload: buf,
    };
    this.links
      .get(via.ifname)!
      .send(
        datagram,
        to.kind === 'unicast' ? Buffer.from(to.mac.split(':').map((h) => parseInt(h, 16))) : BROADCAST_MAC,
      );
  }

  close(): void {
    for (const s of this.links.values()) s.close();
    this.links.clear();
  }
}
