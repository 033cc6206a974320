// `cancel` and `list` on a real cluster (two shards, a replica of shard 0, a Spider node, the tdbctl
// stand-in, binlog_format=ROW on the masters), with real daemons per simulated host, real backups
// (the fake one) and real kills.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import type { Instance } from '../src/sandbox/cluster.js';
import { createCancelTable } from '../src/sql/ddl.js';
import { DaemonProcess } from './support/daemon.js';
import { setUpCluster, type TestCluster, type ClusterWorkspace } from './support/cluster.js';
import { insertCancels, insertTasks, statusOf, taskOf } from './support/tasks.js';
import { pidAlive, waitFor } from './support/workspace.js';

let cluster: TestCluster<'wsSpider' | 'wsM0' | 'wsM1' | 'wsS0'>;
let m0: Instance;
let m1: Instance;
let s0: Instance;
/** One workspace per simulated host: the spider node's, each master's and the replica's. */
let wsSpider: ClusterWorkspace;
let wsM0: ClusterWorkspace;
let wsM1: ClusterWorkspace;
let wsS0: ClusterWorkspace;
let spiderIni: string;

before(async () => {
  cluster = await setUpCluster({
    shards: 2,
    slaves: [0],
    tdbctl: true,
    // Row images: an UPDATE of a master-side row replicates as a whole row over the replica's own.
    binlogFormat: 'ROW',
    config: { schedule: { wait_interval: '300ms', unclaimed_after: '1h' } },
    workspaces: {
      wsSpider: { serves: ['spider0'] },
      wsM0: { serves: ['master0'] },
      wsM1: { serves: ['master1'] },
      wsS0: { serves: ['slave0'] },
    },
  });
  ({ wsSpider, wsM0, wsM1, wsS0 } = cluster.workspaces);
  [m0, m1] = cluster.masters as [Instance, Instance];
  s0 = cluster.slaves[0] as Instance;
  spiderIni = wsSpider.dropIn(cluster.spider);
});

after(() => cluster?.close());

beforeEach(() => cluster.reset());

const cli = (...args: string[]) => wsSpider.cli('-c', spiderIni, ...args);
const runOf = (inst: Instance, backupId: string) =>
  waitFor(`the backup ${backupId}@${inst.port} to start`, () =>
    cluster
      .workspaceOf(inst)
      .runs()
      .find((r) => r.port === inst.port && r.backupId === backupId),
  );
const runsOf = (backupId: string) => [wsM0, wsM1, wsS0, wsSpider].flatMap((w) => w.runs().filter((r) => r.backupId === backupId));
const alive = (backupId: string) =>
  runsOf(backupId).flatMap((r) => [r.pid, r.grandchild].filter((p): p is number => p !== undefined && pidAlive(p)));

interface ListRow {
  backupId: string;
  state: string;
  total: number;
  success: number;
  failed: number;
  running: number;
  cancelled: number;
  unknown: number;
  cancelledBy: string | null;
  endedAt: string | null;
}
async function list(...args: string[]): Promise<ListRow[]> {
  const r = await cli('list', '--format', 'json', ...args);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ListRow[];
}

describe('cancel, with an agent on every host but the spider node', () => {
  let daemons: DaemonProcess[] = [];
  before(async () => {
    daemons = [wsM0, wsM1, wsS0].map((w) => new DaemonProcess(w));
    for (const d of daemons) await d.ready();
  });
  after(async () => {
    for (const w of [wsM0, wsM1, wsS0]) for (const p of [m0, m1, s0]) w.release(p.port);
    for (const d of daemons) await d.dispose();
  });

  test(
    'a waiting task, backups running on both masters and on the replica (ROW binlog): all killed within 2 ticks, list says cancelled',
    { timeout: 180_000 },
    async () => {
      for (const [w, inst] of [
        [wsM0, m0],
        [wsM1, m1],
        [wsS0, s0],
      ] as const)
        w.behave(inst.port, { block: true, grandchild: true });
      const sch = await cli('schedule', '--backup-id', 'cx-1');
      assert.equal(sch.code, 0, sch.stderr);
      for (const inst of [m0, m1, s0]) await runOf(inst, 'cx-1');
      const replicaPid = (await taskOf(cluster, s0, 'cx-1', s0))?.TaskPid as number;

      const r = await cli('cancel', 'cx-1');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /backup id cx-1 cancelled by /);
      // Never a master-side copy over the replica's row: on the replica it keeps its real pid.
      const onReplica = await taskOf(cluster, s0, 'cx-1', s0);
      assert.ok(
        (onReplica?.BackupStatus === 'quit' && onReplica.TaskPid === replicaPid) || onReplica?.BackupStatus === 'quit: success',
        JSON.stringify(onReplica),
      );
      assert.equal(await statusOf(cluster, cluster.spider, 'cx-1'), 'quit: no process', 'the waiting task never starts');

      // Two whole ticks of every agent after the cancel: everything of the backup is gone.
      await Promise.all(daemons.map((d) => d.ticks(2)));
      assert.deepEqual(alive('cx-1'), [], 'no process of the cancelled backup lives');
      for (const inst of [m0, m1]) assert.equal(await statusOf(cluster, inst, 'cx-1'), 'quit: success');
      assert.equal(await statusOf(cluster, s0, 'cx-1', s0), 'quit: success');
      await cluster.waitReplicated();
      assert.equal(await statusOf(cluster, s0, 'cx-1', m0), 'replicated', "the master-side copy of the replica's row is untouched");
      assert.equal(runsOf('cx-1').filter((x) => x.port === cluster.spider.port).length, 0);

      const [row] = (await list()).filter((x) => x.backupId === 'cx-1');
      assert.equal(row?.state, 'cancelled');
      assert.deepEqual([row?.total, row?.cancelled, row?.success, row?.running], [4, 4, 0, 0]);
      assert.match(String(row?.cancelledBy), /@/);

      const again = await cli('cancel', 'cx-1', '--wait');
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /has already ended; nothing to cancel/);
    },
  );

  test(
    'a replica row that arrives by replication after the cancel is never started; cancel --wait waits for it and prints each outcome',
    { timeout: 180_000 },
    async () => {
      await cluster.exec(s0, 'STOP SLAVE SQL_THREAD');
      try {
        for (const [w, inst] of [
          [wsM0, m0],
          [wsM1, m1],
        ] as const)
          w.behave(inst.port, { block: true });
        const sch = await cli('schedule', '--backup-id', 'cx-2');
        assert.equal(sch.code, 0, sch.stderr);
        for (const inst of [m0, m1]) await runOf(inst, 'cx-2');
        assert.equal(await taskOf(cluster, s0, 'cx-2', s0), undefined, 'the replica row has not arrived');

        const waiting = wsSpider.start(['-c', spiderIni, 'cancel', 'cx-2', '--wait']);
        await waitFor('the cancel to be applied', () => /cancelled by/.test(waiting.stdout()));
        await cluster.exec(s0, 'START SLAVE SQL_THREAD');
        await cluster.waitReplicated();
        const r = await waiting.result;
        assert.equal(r.code, 0, r.stderr + r.stdout);
        assert.match(r.stdout, /nothing of it runs any more; outcome per task/);
        const outcome = r.stdout.slice(r.stdout.indexOf('outcome per task'));
        assert.match(outcome, new RegExp(`SPT_SLAVE0 .*${s0.port}.*quit: no process`));
        assert.match(outcome, new RegExp(`SPT0 .*${m0.port}.*quit: success`));
        assert.equal(await statusOf(cluster, s0, 'cx-2', s0), 'quit: no process');
        assert.deepEqual(
          wsS0.runs().filter((x) => x.backupId === 'cx-2'),
          [],
          'the late replica row never started a backup',
        );
        assert.deepEqual(alive('cx-2'), []);
        assert.equal((await list()).find((x) => x.backupId === 'cx-2')?.state, 'cancelled');
      } finally {
        await cluster.exec(s0, 'START SLAVE SQL_THREAD');
      }
    },
  );
  test(
    'a replica row claimed after cancel read its replica, before the record there: read again and quit, never "will not start"',
    { timeout: 180_000 },
    async () => {
      // The record table exists on the replica (replicated), so a session can hold it.
      await cluster.exec(m0, createCancelTable());
      await cluster.waitReplicated();
      await cluster.exec(s0, 'STOP SLAVE SQL_THREAD');
      // A READ lock lets the agent read the records but makes cancel's record on the replica wait:
      // the replica row arrives and is claimed in between, deterministically.
      const holder = await mysql.createConnection({ socketPath: s0.socket, user: 'root' });
      try {
        wsS0.behave(s0.port, { block: true });
        const sch = await cli('schedule', '--backup-id', 'cx-4');
        assert.equal(sch.code, 0, sch.stderr);
        assert.equal(await taskOf(cluster, s0, 'cx-4', s0), undefined, 'the replica row has not arrived');
        await holder.query('LOCK TABLES infodba_schema.spiderbackup_cancel READ');
        const cancel = wsSpider.start(['-c', spiderIni, 'cancel', 'cx-4']);
        await waitFor('the cancel record on the replica to wait for the lock', async () => {
          const rows = await cluster.query(
            s0,
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO infodba_schema.spiderbackup_cancel%' " +
              "AND STATE LIKE '%metadata lock%'",
          );
          return rows.length > 0;
        });
        await cluster.exec(s0, 'START SLAVE SQL_THREAD');
        await runOf(s0, 'cx-4');
        assert.equal(await statusOf(cluster, s0, 'cx-4', s0), 'running', 'claimed before the record');
        await holder.query('UNLOCK TABLES');

        const r = await cancel.result;
        assert.equal(r.code, 0, r.stderr + r.stdout);
        const line = r.stdout.split('\n').find((l) => l.startsWith('SPT_SLAVE0 '));
        assert.doesNotMatch(String(line), /will not start|will never start/, r.stdout);
        assert.match(String(line), /quit: its agent kills the backup/, r.stdout);
        await waitFor('the replica backup quit', async () => (await statusOf(cluster, s0, 'cx-4', s0)) === 'quit: success');
        await Promise.all(daemons.map((d) => d.ticks(1)));
        assert.deepEqual(alive('cx-4'), [], 'no process of the cancelled backup lives');
      } finally {
        await holder.query('UNLOCK TABLES').catch(() => {});
        await holder.end();
        await cluster.exec(s0, 'START SLAVE SQL_THREAD');
      }
    },
  );
});

describe('cancel with a replica down, with an agent on every host but the spider node', () => {
  let daemons: DaemonProcess[] = [];
  before(async () => {
    daemons = [wsM0, wsM1, wsS0].map((w) => new DaemonProcess(w));
    for (const d of daemons) await d.ready();
  });
  after(async () => {
    for (const w of [wsM0, wsM1, wsS0]) for (const p of [m0, m1, s0]) w.release(p.port);
    for (const d of daemons) await d.dispose();
  });

  test(
    'the replica is named and the exit code is 1; once it is back, cancel again finishes the job and nothing of the backup runs',
    { timeout: 180_000 },
    async () => {
      for (const [w, inst] of [
        [wsM0, m0],
        [wsM1, m1],
      ] as const)
        w.behave(inst.port, { block: true });
      wsS0.behave(s0.port, { block: true });
      await cluster.stop(s0);
      try {
        const sch = await cli('schedule', '--backup-id', 'cx-3');
        assert.equal(sch.code, 0, sch.stderr);
        for (const inst of [m0, m1]) await runOf(inst, 'cx-3');
        const r = await cli('cancel', 'cx-3');
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stderr, new RegExp(`SPT_SLAVE0 127\\.0\\.0\\.1:${s0.port}: .*run cancel again once it is reachable`));
        assert.match(r.stdout, /NOT REACHED/);
        for (const inst of [m0, m1])
          await waitFor(`${inst.name} quit`, async () => (await statusOf(cluster, inst, 'cx-3')) === 'quit: success');
      } finally {
        await cluster.start(s0);
      }
      await cluster.waitReplicated();
      const again = await cli('cancel', 'cx-3', '--wait');
      assert.equal(again.code, 0, again.stderr + again.stdout);
      // The replica's agent may have ended its task first (the master's quit replicated to it under
      // ROW format): then the second cancel finds the backup ended. Either way nothing runs.
      assert.match(again.stdout, /nothing of it runs any more|has already ended; nothing to cancel/);
      assert.match(String(await statusOf(cluster, s0, 'cx-3', s0)), /^quit: (no process|success)$/);
      assert.deepEqual(alive('cx-3'), []);
      assert.equal((await list()).find((x) => x.backupId === 'cx-3')?.state, 'cancelled');
    },
  );
});

describe('list', () => {
  test(
    'states complete, failed, running, cancelled, and a task expired after 12 h makes a backup failed, not cancelled',
    { timeout: 180_000 },
    async () => {
      const all = [cluster.spider, m0, m1, s0];
      const set = (backupId: string, ago: number, status: (i: Instance) => string | undefined) =>
        all.map((i) => ({ backupId, for: i, createdAgoS: ago, ...(status(i) === undefined ? {} : { status: status(i) }) }));
      await insertTasks(cluster, [
        ...set('l-expired', 13 * 3600, (i) => (i === m1 ? undefined : 'success')),
        ...set('l-complete', 500, () => 'success'),
        ...set('l-failed', 400, (i) => (i === m0 ? 'failed: exit code 1' : 'success')),
        ...set('l-running', 300, (i) => (i === m0 ? 'running' : 'success')),
      ]);
      // The agent of m1 expires its 12 h old task: quit, then quit: no process.
      const m1Ini = wsM1.iniFile(m1);
      for (let i = 0; i < 2; i++) assert.equal((await wsM1.cli('check', '-c', m1Ini, '--run')).code, 0);
      assert.equal(await statusOf(cluster, m1, 'l-expired'), 'quit: no process');
      await insertTasks(
        cluster,
        set('l-cancelled', 200, () => undefined),
      );
      const c = await cli('cancel', 'l-cancelled');
      assert.equal(c.code, 0, c.stderr);

      const rows = await list();
      assert.deepEqual(
        rows.map((r) => [r.backupId, r.state]),
        [
          ['l-cancelled', 'cancelled'],
          ['l-running', 'running'],
          ['l-failed', 'failed'],
          ['l-complete', 'complete'],
          ['l-expired', 'failed'],
        ],
      );
      const by = new Map(rows.map((r) => [r.backupId, r]));
      assert.deepEqual([by.get('l-expired')?.failed, by.get('l-expired')?.cancelled, by.get('l-expired')?.cancelledBy], [1, 0, null]);
      assert.deepEqual([by.get('l-cancelled')?.cancelled, by.get('l-cancelled')?.total], [4, 4]);
      assert.deepEqual([by.get('l-running')?.running, by.get('l-running')?.endedAt], [1, null]);
      assert.deepEqual([by.get('l-complete')?.success, by.get('l-complete')?.total], [4, 4]);

      assert.deepEqual(
        (await list('--limit', '2')).map((r) => r.backupId),
        ['l-cancelled', 'l-running'],
      );
      const table = await cli('list');
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /BackupId .*State .*Created .*Ended .*Duration .*Tasks .*Success .*Failed .*Running .*Cancelled/);
      assert.match(table.stdout, /5 backups/);

      const latest = await cli('list', '--latest-complete');
      assert.deepEqual([latest.code, latest.stdout], [0, 'l-complete\n']);
    },
  );

  test('a user without SELECT on the cancel records still gets its backup, with a warning', { timeout: 60_000 }, async () => {
    await cluster.exec(m1, createCancelTable());
    await cluster.exec(m1, "CREATE USER IF NOT EXISTS 'sbnocancel'@'%' IDENTIFIED BY 'nocancel-pw'");
    await cluster.exec(m1, "GRANT SELECT, UPDATE ON infodba_schema.global_backup TO 'sbnocancel'@'%'");
    const ini = wsM1.iniFile(m1, { MysqlUser: 'sbnocancel', MysqlPasswd: 'nocancel-pw' });
    await insertTasks(cluster, [{ backupId: 'nocancel-1', for: m1 }]);
    const r = await wsM1.cli('check', '--run', '-c', ini);
    assert.equal(await statusOf(cluster, m1, 'nocancel-1'), 'success', r.stderr);
    assert.match(r.stderr, /cannot read the cancel records \(privilege missing\)/);
  });

  test('cancel records older than 30 days are purged on each instance, not through replication', { timeout: 60_000 }, async () => {
    await cluster.exec(m0, createCancelTable());
    await cluster.waitReplicated();
    await insertCancels(cluster, m0, [
      { backupId: 'old-cancel', for: m0, agoS: 31 * 86400 },
      { backupId: 'new-cancel', for: m0, agoS: 29 * 86400 },
    ]);
    await cluster.waitReplicated();
    const r = await wsM0.cli('check', '--run', '-c', wsM0.iniFile(m0));
    assert.equal(r.code, 0, r.stderr);
    const ids = async (i: Instance) =>
      (
        await cluster.query<{ BackupId: string }>(
          i,
          "SELECT BackupId FROM infodba_schema.spiderbackup_cancel WHERE BackupId IN ('old-cancel', 'new-cancel') ORDER BY BackupId",
        )
      ).map((x) => x.BackupId);
    assert.deepEqual(await ids(m0), ['new-cancel']);
    await cluster.waitReplicated();
    assert.deepEqual(await ids(s0), ['new-cancel', 'old-cancel'], 'the delete was not binlogged: the replica purges its own');
  });

  test('--latest-complete exits 1 when no backup is complete', { timeout: 60_000 }, async () => {
    await insertTasks(cluster, [{ backupId: 'l-only-failed', for: m0, status: 'failed: exit code 2' }]);
    const r = await cli('list', '--latest-complete');
    assert.deepEqual([r.code, r.stdout], [1, '']);
    assert.match(r.stderr, /no complete backup/);
  });
});
