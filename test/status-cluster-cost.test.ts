// What one `status --cluster` costs each instance it reads, counted by the instances themselves
// (`Questions`, `Connections`; README "Performance"): at a thousand shards its round trips and
// connections are the command's time. A shard master answers one statement (presence and tasks
// together), a replica two (and its replication status) in one request; each is connected to once, and each
// connection ends with its quit (which `Questions` counts too). Counts, not timings.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { ADMIN_USER } from '../src/sandbox/cluster.js';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { DaemonProcess } from './support/daemon.js';
import { CounterSet, delta } from './support/status-counters.js';
import { waitFor } from './support/workspace.js';

let cluster: TestCluster<'host' | 'op'>;
let op: ClusterWorkspace;

before(async () => {
  cluster = await setUpCluster({
    shards: 3,
    slaves: [0, 1],
    tdbctl: true,
    workspaces: { host: { serves: ['spider0', 'master0', 'master1', 'master2', 'slave0', 'slave1'] }, op: {} },
  });
  op = cluster.workspaces.op;
});

after(() => cluster?.close());

test('status --cluster: one connection to each instance; one statement on a master, two on a replica', { timeout: 180_000 }, async (t) => {
  const spiderIni = op.iniFile(cluster.spider);
  // Every agent announces itself once, then stops: nothing else talks to the instances while counted.
  const daemon = new DaemonProcess(cluster.workspaces.host);
  try {
    await daemon.ready();
    await waitFor('every agent alive', async () => (await op.cli('status', '--cluster', '-c', spiderIni)).code === 0, 60_000);
  } finally {
    await daemon.dispose();
  }
  // Not SPT0: the spider node's own rows are read through Spider, which reads them on SPT0.
  const instances: Instance[] = [...cluster.masters.slice(1), ...cluster.slaves];
  const counters = await CounterSet.open(instances);
  try {
    const reading = await counters.baseline(0);
    const a = await counters.read();
    const r = await op.cli('status', '--cluster', '-c', spiderIni, '--format', 'json');
    const b = await counters.read();
    assert.equal(r.code, 0, r.stderr);
    const shown = (JSON.parse(r.stdout) as { instances: { port: number; agent: { state: string } }[] }).instances;
    for (const i of instances) assert.equal(shown.find((s) => s.port === i.port)?.agent.state, 'alive', `${i.name} shown alive`);
    for (const [k, i] of instances.entries()) {
      const d = delta(a[k] as never, b[k] as never);
      const statements = d.questions - (reading[k]?.questions ?? 0) - 1; // the quit
      const connections = d.connections - (reading[k]?.connections ?? 0);
      t.diagnostic(`${i.name}: ${statements} statements, ${connections} connections`);
      assert.equal(connections, 1, `${i.name}: connections`);
      assert.equal(statements, i.role === 'slave' ? 2 : 1, `${i.name}: statements`);
    }
  } finally {
    await counters.close();
  }
});

test(
  'a replica that refuses its replication status: its presence and tasks are still shown, the refusal is named',
  { timeout: 120_000 },
  async () => {
    // The one request (presence and tasks; SHOW SLAVE STATUS) fails as a whole; the reads then
    // follow one by one, and only the refused one is missing. Kept out of the replica's binlog.
    const s1 = cluster.slaves[1] as Instance;
    const root = await mysql.createConnection({ socketPath: s1.socket, user: 'root' });
    try {
      await root.query('SET SESSION sql_log_bin = 0');
      await root.query(`REVOKE SLAVE MONITOR, SUPER ON *.* FROM '${ADMIN_USER}'@'%'`);
      try {
        const r = await op.cli('status', '--cluster', '-c', op.iniFile(cluster.spider), '--format', 'json');
        assert.equal(r.code, 1, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(`SPT_SLAVE1 ${s1.host}:${s1.port}: cannot read its replication status: .*SLAVE MONITOR`),
          r.stderr,
        );
        const shown = (
          JSON.parse(r.stdout) as { instances: { port: number; reachable: boolean; agent: { state: string; agentHost?: string } }[] }
        ).instances;
        const replica = shown.find((i) => i.port === s1.port);
        assert.equal(replica?.reachable, true);
        // Its presence was read (the agent's host named), though the agent has stopped since.
        assert.notEqual(replica?.agent.state, 'unknown', JSON.stringify(replica));
        assert.ok(replica?.agent.agentHost, JSON.stringify(replica));
      } finally {
        await root.query(`GRANT SLAVE MONITOR, SUPER ON *.* TO '${ADMIN_USER}'@'%'`);
      }
    } finally {
      await root.end();
    }
  },
);
