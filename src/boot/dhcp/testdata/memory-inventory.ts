// A small in-memory Inventory for the DHCP server's tests and benchmark: the parts the server
// uses (machines by MAC, subnets, leases) with the contract's lease semantics (allocateLease
// renews a MAC's current lease in that subnet, else takes the lowest free pool address; expired
// leases of others are free). With `file`, every change is written there as JSON and read back
// on open, so a restarted server finds its leases (the persistence test).
import fs from 'node:fs';
import {
  ConflictError, NotFoundError, type Inventory, type Lease, type Machine, type MachinePatch, type MachineState, type NewMachine,
  type StateChange, type Subnet,
} from '../../../inventory/types.ts';
import { intToIp, ipToInt } from '../ipv4-subnet.ts';

interface State {
  machines: Machine[];
  subnets: Subnet[];
  leases: Lease[];
  history: StateChange[];
}

export function memoryInventory(file?: string, seed?: { machines?: NewMachine[]; subnets?: Subnet[] }): Inventory {
  const now = () => new Date().toISOString();
  const st: State = file && fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : { machines: [], subnets: [], leases: [], history: [] };
  const save = () => file && fs.writeFileSync(file, JSON.stringify(st));
  const byMac = new Map<string, Machine>();
  const statics = new Set<string>();
  const reindex = () => {
    byMac.clear();
    statics.clear();
    for (const m of st.machines) {
      for (const mac of m.macs) byMac.set(mac, m);
      if (m.ip) statics.add(m.ip);
    }
  };
  const mustGet = (hostname: string) => {
    const m = st.machines.find((x) => x.hostname === hostname);
    if (!m) throw new NotFoundError(`no machine '${hostname}'`);
    return m;
  };
  const inv: Inventory = {
    async addMachine(n) {
      if (st.machines.some((m) => m.hostname === n.hostname)) throw new ConflictError(`machine '${n.hostname}' exists`);
      const m: Machine = { ...n, macs: n.macs.map((x) => x.toLowerCase()), tags: n.tags ?? {}, state: n.state ?? 'unknown', stateChangedAt: now(), createdAt: now() };
      st.machines.push(m);
      reindex();
      save();
      return { ...m };
    },
    async updateMachine(hostname, patch: MachinePatch) {
      Object.assign(mustGet(hostname), patch);
      reindex();
      save();
      return { ...mustGet(hostname) };
    },
    async removeMachine(hostname) {
      st.machines = st.machines.filter((m) => m.hostname !== hostname);
      reindex();
      save();
    },
    async getMachine(hostname) {
      const m = st.machines.find((x) => x.hostname === hostname);
      return m && { ...m };
    },
    async findMachineByMac(mac) {
      const m = byMac.get(mac.toLowerCase());
      return m && { ...m };
    },
    async findMachineByIp(ip) {
      const m = st.machines.find((x) => x.ip === ip);
      return m && { ...m };
    },
    async listMachines(filter) {
      return st.machines.filter((m) => (!filter?.state || m.state === filter.state) && (!filter?.tag || m.tags[filter.tag[0]] === filter.tag[1]));
    },
    async setState(hostname, to: MachineState, reason) {
      const m = mustGet(hostname);
      if (m.state !== to) {
        st.history.push({ hostname, from: m.state, to, at: now(), reason });
        m.state = to;
        m.stateChangedAt = now();
        save();
      }
      return { ...m };
    },
    async history(hostname) {
      return st.history.filter((h) => h.hostname === hostname);
    },
    async addSubnet(s) {
      if (st.subnets.some((x) => x.id === s.id)) throw new ConflictError(`subnet '${s.id}' exists`);
      st.subnets.push(s);
      save();
      return s;
    },
    async getSubnet(id) {
      return st.subnets.find((s) => s.id === id);
    },
    async listSubnets() {
      return [...st.subnets];
    },
    async removeSubnet(id) {
      st.subnets = st.subnets.filter((s) => s.id !== id);
      save();
    },
    async allocateLease(mac, subnetId, leaseSeconds, at, hostname) {
      const subnet = st.subnets.find((s) => s.id === subnetId);
      if (!subnet) throw new NotFoundError(`no subnet '${subnetId}'`);
      const expiresAt = new Date(at.getTime() + leaseSeconds * 1000).toISOString();
      const cur = st.leases.find((l) => l.mac === mac);
      if (cur && cur.subnetId === subnetId && !statics.has(cur.ip)) {
        Object.assign(cur, { expiresAt, hostname });
        save();
        return { ...cur };
      }
      if (!subnet.pool) return undefined;
      const byIp = new Map(st.leases.map((l) => [l.ip, l]));
      const free = (cand: string) => {
        const l = byIp.get(cand);
        return !statics.has(cand) && (!l || l.mac === mac || Date.parse(l.expiresAt) <= at.getTime());
      };
      let ip: string | undefined;
      for (let n = ipToInt(subnet.pool.start), last = ipToInt(subnet.pool.end); n <= last && !ip; n++) if (free(intToIp(n))) ip = intToIp(n);
      if (!ip) return undefined;
      st.leases = st.leases.filter((l) => l.mac !== mac && l.ip !== ip);
      const lease: Lease = { mac, ip, subnetId, expiresAt, ...(hostname ? { hostname } : {}) };
      st.leases.push(lease);
      save();
      return { ...lease };
    },
    async getLease(mac) {
      const l = st.leases.find((x) => x.mac === mac);
      return l && { ...l };
    },
    async listLeases() {
      return st.leases.map((l) => ({ ...l }));
    },
    async releaseLease(mac) {
      st.leases = st.leases.filter((l) => l.mac !== mac);
      save();
    },
    // Node groups: the DHCP server never reads them; present for the contract only.
    async addNodeGroup() {
      throw new Error('node groups are not kept by the in-memory test inventory');
    },
    async updateNodeGroup() {
      throw new Error('node groups are not kept by the in-memory test inventory');
    },
    async getNodeGroup() {
      return undefined;
    },
    async listNodeGroups() {
      return [];
    },
    async removeNodeGroup() {},
    async nodeGroupsUsingKit() {
      return [];
    },
    async recordProgress() {},
    async getProgress() {
      return undefined;
    },
    // DHCP keeps no installer logs.
    async appendInstallerLog() {},
    async installerLog() {
      return [];
    },
    async clearInstallerLog() {},
    async close() {},
  };
  reindex();
  if (seed) {
    for (const s of seed.subnets ?? []) if (!st.subnets.some((x) => x.id === s.id)) st.subnets.push(s);
    for (const m of seed.machines ?? []) if (!st.machines.some((x) => x.hostname === m.hostname)) void inv.addMachine(m);
    save();
  }
  return inv;
}
