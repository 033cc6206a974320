// What an idle daemon costs the instances it serves, counted by the instances themselves
// (`Questions`, `Connections`): the real daemon, ticking every 500 ms, against two masters and a
// replica with no task that nothing else talks to (the replica's master is not served, so nothing
// replicates to it). On the replica the presence goes on a second, unbinlogged connection: still
// two statements. Counts, not timings: the same on a fast and a slow machine.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type TestCluster } from './support/cluster.js';
import { DaemonProcess } from './support/daemon.js';
import { CounterSet, delta, perTick } from './support/status-counters.js';

/** Ticks counted; the first ticks (which also purge old rows) are not. */
const TICKS = 8;
const WARM_UP_TICKS = 2;

let cluster: TestCluster;
let instances: Instance[];

before(async () => {
  // No spider node, and no served master with a replica: an applier would be "something else".
  cluster = await setUpCluster({ shards: 3, slaves: [0] });
  instances = [cluster.masters[1] as Instance, cluster.masters[2] as Instance, ...cluster.slaves];
});

after(() => cluster?.close());

interface Cost {
  /** Per instance, per tick. */
  statements: number[];
  connections: number[];
  /** Connections opened over the whole window, per instance. */
  connectionsInWindow: number[];
}

let measured: Promise<Cost> | undefined;

/** One measurement shared by the assertions below. */
function idleCost(): Promise<Cost> {
  measured ??= (async () => {
    const ws = cluster.workspace({ config: { agent: { tick_interval: '500ms' } }, serves: instances });
    const counters = await CounterSet.open(instances);
    const daemon = new DaemonProcess(ws);
    try {
      await daemon.ready();
      await daemon.nextTicks(WARM_UP_TICKS);
      const a = await counters.read(); // right after a tick: the next one is ~500 ms away
      const ticks = await daemon.nextTicks(TICKS);
      const b = await counters.read();
      const windowMs = Date.parse(ticks.at(-1)?.finishedAt as string) - Date.parse(ticks[0]?.startedAt as string);
      const during = a.map((x, i) => delta(x, b[i] as typeof x));
      // The same window without the daemon: what reading costs, and any background activity.
      await daemon.dispose();
      const idle = await counters.baseline(windowMs);
      const cost = perTick(during, idle, TICKS);
      return { ...cost, connectionsInWindow: during.map((d, i) => d.connections - (idle[i]?.connections ?? 0)) };
    } finally {
      await daemon.dispose();
      await counters.close();
      ws.close();
    }
  })();
  return measured;
}

test('an idle instance costs at most 2 statements a tick', async (t) => {
  const { statements } = await idleCost();
  t.diagnostic(`statements per idle instance per tick: ${statements.map((s) => s.toFixed(2)).join(', ')}`);
  for (const [i, s] of statements.entries()) {
    assert.ok(s <= 2, `${instances[i]?.name}: ${s.toFixed(2)} statements per tick (at most 2 expected)`);
  }
});

test('an idle daemon opens no connection after its start', async (t) => {
  const { connectionsInWindow, connections } = await idleCost();
  t.diagnostic(`connections opened per instance in ${TICKS} ticks: ${connectionsInWindow.join(', ')}`);
  for (const [i, c] of connectionsInWindow.entries()) {
    assert.equal(c, 0, `${instances[i]?.name}: ${c} connections opened in ${TICKS} ticks (${connections[i]?.toFixed(2)} a tick)`);
  }
});
