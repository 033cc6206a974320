// What `schedule` and `schedule --wait` cost the instances, counted: connections and statements per
// user (MariaDB's userstat), which are exact where the Connections status counter is not (Spider
// opens connections of its own, some from background threads at times of its choosing). The Spider
// node reaches the masters as `sbspider`, spiderbackup reaches every instance as the harness's
// admin user (tdbctl's mysql.servers), so the two are told apart.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_USER, type Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type TestCluster, type ClusterWorkspace } from './support/cluster.js';
import { waitFor } from './support/workspace.js';

const SPIDER_USER = 'sbspider';
const SPIDER_PASSWORD = 'Sp1der-pw!';

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let spiderIni: string;

before(async () => {
  cluster = await setUpCluster({
    shards: 2,
    slaves: [0, 1],
    tdbctl: true,
    workspaces: { ws: { serves: ['spider0'], config: { schedule: { wait_interval: '200ms', unclaimed_after: '1h' } } } },
  });
  ({ ws } = cluster.workspaces);
  for (const m of cluster.masters) {
    await cluster.exec(m, `CREATE USER '${SPIDER_USER}'@'%' IDENTIFIED BY ?`, [SPIDER_PASSWORD]); // replicates
    await cluster.exec(m, `GRANT ALL PRIVILEGES ON *.* TO '${SPIDER_USER}'@'%'`);
  }
  await cluster.waitReplicated();
  for (const m of cluster.masters) {
    await cluster.exec(cluster.spider, `ALTER SERVER SPT${m.shardValue} OPTIONS (USER ?, PASSWORD ?)`, [SPIDER_USER, SPIDER_PASSWORD]);
  }
  await cluster.exec(cluster.spider, 'FLUSH TABLES');
  for (const i of [...cluster.masters, ...cluster.slaves, cluster.spider]) await cluster.exec(i, 'SET GLOBAL userstat = 1');
  spiderIni = ws.dropIn(cluster.spider);
});

after(() => cluster?.close());

beforeEach(() => cluster.reset());

interface Use {
  connections: number;
  selects: number;
}

/** Connections and SELECTs by `user` on each instance since userstat was turned on. */
async function usage(instances: Instance[], user: string): Promise<Use[]> {
  return Promise.all(
    instances.map(async (i) => {
      const [r] = await cluster.query<{ c: number | string; s: number | string }>(
        i,
        'SELECT TOTAL_CONNECTIONS AS c, SELECT_COMMANDS AS s FROM information_schema.USER_STATISTICS WHERE USER = ?',
        [user],
      );
      return { connections: Number(r?.c ?? 0), selects: Number(r?.s ?? 0) };
    }),
  );
}

async function delta(instances: Instance[], user: string, during: () => Promise<unknown>): Promise<Use[]> {
  const before = await usage(instances, user);
  await during();
  const after = await usage(instances, user);
  return after.map((a, k) => ({ connections: a.connections - before[k]!.connections, selects: a.selects - before[k]!.selects }));
}

const rounds = (stdout: string, id: string) => (stdout.match(new RegExp(`\\] ${id}: `, 'g')) ?? []).length;

/** Ends every task of `id` on the masters (the spider master's row is on shard 0); replica rows follow by replication. */
async function finish(id: string): Promise<void> {
  for (const m of cluster.masters) {
    await cluster.exec(m, "UPDATE infodba_schema.global_backup SET BackupStatus = 'success' WHERE BackupId = ?", [id]);
  }
}

describe('schedule: what it costs the instances', () => {
  test('tables in place: no connection to any shard master, one to the spider node; the rows go through Spider', async () => {
    const masters = cluster.masters;
    const [ours, spiders, atSpider] = await Promise.all([
      usage(masters, ADMIN_USER),
      usage(masters, SPIDER_USER),
      usage([cluster.spider], ADMIN_USER),
    ]);
    const r = await ws.cli('schedule', '-c', spiderIni, '--backup-id', 'cost-1');
    assert.equal(r.code, 0, r.stderr);
    const [ours2, spiders2, atSpider2] = await Promise.all([
      usage(masters, ADMIN_USER),
      usage(masters, SPIDER_USER),
      usage([cluster.spider], ADMIN_USER),
    ]);
    assert.deepEqual(
      ours2.map((u, k) => u.connections - ours[k]!.connections),
      [0, 0],
      'spiderbackup connects to no shard master',
    );
    assert.ok(
      spiders2.every((u, k) => u.connections > spiders[k]!.connections),
      'the Spider node wrote the rows on every master',
    );
    assert.equal(atSpider2[0]!.connections - atSpider[0]!.connections, 1, 'one session on the spider node');
    const rows = await cluster.query(cluster.spider, 'SELECT 1 FROM infodba_schema.global_backup WHERE BackupId = ?', ['cost-1']);
    assert.equal(rows.length, 5);
  });

  test('a duplicate id is found on shard 0 alone and named with its task count', async () => {
    assert.equal((await ws.cli('schedule', '-c', spiderIni, '--backup-id', 'dup-1')).code, 0);
    const r = await ws.cli('schedule', '-c', spiderIni, '--backup-id', 'dup-1');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /backup id dup-1 already exists \(5 tasks\)/);
  });

  test('a shard master without the table (Spider table in place): created there, and the schedule goes through', async () => {
    const m1 = cluster.masters[1]!;
    await cluster.exec(m1, 'DROP TABLE infodba_schema.global_backup');
    await cluster.waitReplicated();
    const used = await delta(cluster.masters, ADMIN_USER, async () => {
      const r = await ws.cli('schedule', '-c', spiderIni, '--backup-id', 'heal-1');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`created infodba_schema\\.global_backup on SPT1 127\\.0\\.0\\.1:${m1.port}`));
    });
    assert.deepEqual(
      used.map((u) => u.connections),
      [1, 1],
      'each master is connected to once, to look for the table',
    );
    const rows = await cluster.query(m1, 'SELECT ServerName FROM infodba_schema.global_backup WHERE BackupId = ? ORDER BY 1', ['heal-1']);
    assert.deepEqual(
      rows.map((x: { ServerName: string }) => x.ServerName),
      ['SPT1', 'SPT_SLAVE1'],
    );
  });
});

describe('schedule --wait: what it costs the instances', () => {
  test('several rounds: one connection per replica, none to the masters, one spider session and one statement per round', async () => {
    const id = 'cost-wait';
    // The restore point taken after a complete backup has costs of its own (test/restore-point.test.ts).
    ws.writeAgentConfig({ schedule: { wait_interval: '200ms', unclaimed_after: '1h', restore_points: 'off' } });
    const replicas = cluster.slaves;
    const before = await Promise.all([
      usage(replicas, ADMIN_USER),
      usage(cluster.masters, ADMIN_USER),
      usage([cluster.spider], ADMIN_USER),
    ]);
    const waiter = ws.start(['schedule', '-c', spiderIni, '--wait', '--backup-id', id]);
    await waitFor('four rounds', () => rounds(waiter.stdout(), id) >= 4, 60_000);
    await finish(id);
    const r = await waiter.result;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const n = rounds(r.stdout, id);
    const after = await Promise.all([usage(replicas, ADMIN_USER), usage(cluster.masters, ADMIN_USER), usage([cluster.spider], ADMIN_USER)]);
    const [replicasUsed, mastersUsed, spiderUsed] = after.map((list, g) =>
      list.map((u, k) => ({ connections: u.connections - before[g]![k]!.connections, selects: u.selects - before[g]![k]!.selects })),
    ) as [Use[], Use[], Use[]];
    assert.deepEqual(
      replicasUsed,
      replicas.map(() => ({ connections: 1, selects: n })),
      `${n} rounds: each replica connected to once and read once a round`,
    );
    assert.deepEqual(
      mastersUsed.map((u) => u.connections),
      [0, 0],
      'masters are read through Spider',
    );
    // schedule: the table check and the duplicate check; then the master side, one SELECT a round.
    assert.deepEqual(spiderUsed, [{ connections: 1, selects: 2 + n }]);
  });

  test('a replica and a master restarted between two rounds: the next round reads both again, without an error', async () => {
    const id = 'restart-wait';
    const [m1, s0] = [cluster.masters[1]!, cluster.slaves[0]!];
    ws.writeAgentConfig({ schedule: { wait_interval: '5s', unclaimed_after: '1h' } }); // room for two restarts between rounds
    try {
      const waiter = ws.start(['schedule', '-c', spiderIni, '--wait', '--backup-id', id]);
      await waitFor('the first round', () => rounds(waiter.stdout(), id) >= 1, 60_000);
      await cluster.stop(s0);
      await cluster.start(s0);
      await cluster.stop(m1);
      await cluster.start(m1);
      assert.equal(rounds(waiter.stdout(), id), 1, 'the restarts took longer than wait_interval');
      await waitFor('the round after the restarts', () => rounds(waiter.stdout(), id) >= 2, 60_000);
      await cluster.waitReplicated();
      await finish(id);
      const r = await waiter.result;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.doesNotMatch(r.stdout, /poll error/);
      assert.match(r.stdout, new RegExp(`${id}: 5/5 success`));
    } finally {
      ws.writeAgentConfig({ schedule: { wait_interval: '200ms', unclaimed_after: '1h' } });
    }
  });
});
