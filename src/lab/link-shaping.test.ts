import assert from 'node:assert/strict';
import { test } from 'node:test';
import { burstBytes, ifbFor, linkShapingCommands, queueBytes } from './link-shaping.ts';

test('1000 Mbit/s: one HTB class on the bridge (downloads) and one on its IFB (uploads), ingress redirected', () => {
  assert.deepEqual(
    linkShapingCommands({ namespace: 'cradle-lab', bridge: 'br0', mbit: 1000 }).map((c) => c.join(' ')),
    [
      'tc -n cradle-lab qdisc add dev br0 root handle 1: htb default 1',
      'tc -n cradle-lab class add dev br0 parent 1: classid 1:1 htb rate 1000mbit ceil 1000mbit burst 625000b cburst 625000b',
      'tc -n cradle-lab qdisc add dev br0 parent 1:1 handle 10: bfifo limit 12500000b',
      'ip -n cradle-lab link add ifb-br0 type ifb',
      'ip -n cradle-lab link set ifb-br0 up',
      'tc -n cradle-lab qdisc add dev ifb-br0 root handle 1: htb default 1',
      'tc -n cradle-lab class add dev ifb-br0 parent 1: classid 1:1 htb rate 1000mbit ceil 1000mbit burst 625000b cburst 625000b',
      'tc -n cradle-lab qdisc add dev ifb-br0 parent 1:1 handle 10: bfifo limit 12500000b',
      'tc -n cradle-lab qdisc add dev br0 handle ffff: ingress',
      'tc -n cradle-lab filter add dev br0 parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev ifb-br0',
    ],
  );
});

test('slow links keep a burst and a queue big enough for full-size (GSO) packets', () => {
  assert.equal(burstBytes(10), 32 * 1024);
  assert.equal(queueBytes(10), 256 * 1024);
  assert.equal(burstBytes(10_000), 6_250_000);
});

test('an IFB name fits in an interface name (15 characters)', () => {
  assert.equal(ifbFor('br-provisioning'), 'ifb-br-provisio');
});

test('a rate that is not a whole number of Mbit/s names the flag', () => {
  for (const mbit of [0, -5, 1.5, Number.NaN, 200_000])
    assert.throws(() => linkShapingCommands({ namespace: 'n', bridge: 'br0', mbit }), /--link-mbit/);
});
