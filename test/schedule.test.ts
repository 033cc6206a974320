// schedule, schedule --wait and query on a real Spider cluster with the tdbctl stand-in.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type TestCluster, type ClusterWorkspace } from './support/cluster.js';
import { statusOf } from './support/tasks.js';
import { waitFor } from './support/workspace.js';

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let spiderIni: string;
let m0: Instance;
let m1: Instance;
let s0: Instance;
let s1: Instance;

const ROWS =
  'SELECT BackupId, ServerName, Wrapper, Host, Port, ShardValue, BackupStatus FROM infodba_schema.global_backup WHERE BackupId = ? ' +
  'ORDER BY ShardValue, ServerName';
type R = { BackupId: string; ServerName: string; Wrapper: string; Port: number; ShardValue: number; BackupStatus: string };

before(async () => {
  cluster = await setUpCluster({
    shards: 2,
    slaves: [0, 1],
    tdbctl: true,
    workspaces: { ws: { serves: ['spider0'], config: { schedule: { wait_interval: '300ms', unclaimed_after: '1h' } } } },
  });
  ({ ws } = cluster.workspaces);
  [m0, m1] = cluster.masters as [Instance, Instance];
  [s0, s1] = cluster.slaves as [Instance, Instance];
  spiderIni = ws.dropIn(cluster.spider);
});

after(() => cluster?.close());

beforeEach(() => cluster.reset());

/** A host's agent: `check --run` over its instances, again and again, until stopped. */
function serveHost(files: string[]) {
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      await ws.cli('check', '--run', '-c', files.join(','));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return async () => {
    stop = true;
    await loop;
  };
}

function iniOf(inst: Instance): string {
  return ws.iniFile(inst);
}

describe('schedule', () => {
  test('on a non-primary node schedule does nothing and exits 0; query answers from the shard masters naming the primary', async () => {
    cluster.tdbctl?.setPrimary(false);
    try {
      const r = await ws.cli('schedule', '-c', spiderIni, '--backup-id', 'np-1');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /is not the primary spider node/);
      assert.equal((await cluster.query(cluster.spider, ROWS, ['np-1'])).length, 0);
      const q = await ws.cli('query', '-c', spiderIni, '--BackupId', 'np-1', '--format', 'json');
      assert.equal(q.code, 0, q.stderr);
      assert.match(
        q.stderr,
        /not the primary spider node \(tdbctl get primary\): read the shard masters directly \(the primary is tdbctl TDBCTL0 /,
      );
      assert.deepEqual(JSON.parse(q.stdout), []);
    } finally {
      cluster.tdbctl?.setPrimary(true);
    }
  });

  test('writes the task set through the spider node: rows land on their shard masters and replicate to the slaves', async () => {
    const r = await ws.cli('-c', spiderIni, 'schedule', '--backup-id=set-1');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /scheduled backup id set-1: 5 tasks/);
    const all = await cluster.query<R>(cluster.spider, ROWS, ['set-1']);
    assert.deepEqual(
      all.map((x) => [x.ServerName, x.Wrapper, x.Port, x.ShardValue, x.BackupStatus]),
      [
        ['SPIDER0', 'SPIDER', cluster.spider.port, 0, 'init'],
        ['SPT0', 'mysql', m0.port, 0, 'init'],
        ['SPT_SLAVE0', 'mysql_slave', s0.port, 0, 'replicated'],
        ['SPT1', 'mysql', m1.port, 1, 'init'],
        ['SPT_SLAVE1', 'mysql_slave', s1.port, 1, 'replicated'],
      ],
    );
    assert.deepEqual(
      (await cluster.query<R>(m1, ROWS, ['set-1'])).map((x) => x.ServerName),
      ['SPT1', 'SPT_SLAVE1'],
      'shard 1 rows only on SPT1',
    );
    await cluster.waitReplicated();
    assert.equal(await statusOf(cluster, s0, 'set-1', s0), 'replicated');
    assert.equal(await statusOf(cluster, s1, 'set-1', s1), 'replicated');
  });

  test('a new UUID when no id is given; the same id twice is an error, not a merge', async () => {
    const r = await ws.cli('schedule', '-c', spiderIni);
    assert.equal(r.code, 0, r.stderr);
    const id = /scheduled backup id ([0-9a-f-]{36})/.exec(r.stdout)?.[1];
    assert.ok(id, r.stdout);
    const again = await ws.cli('schedule', '-c', spiderIni, '--backup-id', id);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`backup id ${id} already exists \\(5 tasks\\)`));
    assert.equal((await cluster.query(cluster.spider, ROWS, [id])).length, 5);
  });

  test('a bad --backup-id is refused before any SQL', async () => {
    const r = await ws.cli('schedule', '-c', spiderIni, "--backup-id=x' OR '1'='1");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--backup-id "x' OR '1'='1": must be 1-40 characters/);
    const long = await ws.cli('schedule', '-c', spiderIni, `--backup-id=${'a'.repeat(41)}`);
    assert.equal(long.code, 2);
  });

  test('-c with the spider and its tdbctl file picks the spider; a wrong pair is a clear error', async () => {
    const ctlIni = cluster.writeInstanceIni(ws.dir, cluster.tdbctlNode as Instance, { MysqlPort: String(cluster.spider.port + 1000) });
    const ok = await ws.cli('schedule', '-c', `${ctlIni},${spiderIni}`, '--backup-id', 'pair-1');
    assert.equal(ok.code, 0, ok.stderr);
    const bad = await ws.cli('schedule', '-c', `${spiderIni},${iniOf(m0)}`, '--backup-id', 'pair-2');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /the other must be its tdbctl at port \d+/);
  });

  test('missing table → created: InnoDB on the masters (replicated), Spider on the spider node', async () => {
    await cluster.exec(cluster.spider, 'DROP TABLE infodba_schema.global_backup');
    for (const m of cluster.masters) await cluster.exec(m, 'DROP TABLE infodba_schema.global_backup');
    await cluster.waitReplicated();
    const r = await ws.cli('schedule', '-c', spiderIni, '--backup-id', 'fresh-1');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /created infodba_schema\.global_backup on spider/);
    const engines = async (i: Instance) =>
      (
        await cluster.query<{ ENGINE: string }>(
          i,
          "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'infodba_schema' AND TABLE_NAME = 'global_backup'",
        )
      )[0]?.ENGINE;
    assert.equal(await engines(cluster.spider), 'SPIDER');
    assert.equal(await engines(m1), 'InnoDB');
    await cluster.waitReplicated();
    assert.equal(await engines(s1), 'InnoDB');
    assert.equal(await statusOf(cluster, s1, 'fresh-1', s1), 'replicated');
  });

  test('an unknown Server_name in mysql.servers is a clear error naming it', async () => {
    const ctl = cluster.tdbctlNode as Instance;
    await cluster.exec(ctl, "CREATE SERVER BACKUP9 FOREIGN DATA WRAPPER mysql OPTIONS (HOST '127.0.0.1', PORT 1, USER 'x', PASSWORD 'y')");
    try {
      const r = await ws.cli('schedule', '-c', spiderIni, '--backup-id', 'bad-srv');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Server_name "BACKUP9" with Wrapper "mysql" is not SPT<n>/);
    } finally {
      await cluster.exec(ctl, 'DROP SERVER BACKUP9');
    }
  });

  test('a shard down at schedule time: nothing written, clear error', async () => {
    await cluster.stop(m1);
    try {
      const r = await ws.cli('schedule', '-c', spiderIni, '--backup-id', 'down-1');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /spiderbackup: .*\d+/);
    } finally {
      await cluster.start(m1);
    }
    assert.equal((await cluster.query(cluster.spider, ROWS, ['down-1'])).length, 0);
  });

  test('a write that fails part-way leaves nothing runnable: the tasks already written are cancelled', async () => {
    // Shard 1 refuses the insert (as a shard failing mid-statement would); shard 0 accepts it.
    await cluster.exec(
      m1,
      "CREATE TRIGGER infodba_schema.refuse BEFORE INSERT ON infodba_schema.global_backup FOR EACH ROW SIGNAL SQLSTATE '45000' SET " +
        "MESSAGE_TEXT = 'shard 1 is failing'",
    );
    try {
      const r = await ws.cli('schedule', '-c', spiderIni, '--backup-id', 'partial-1');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /schedule of partial-1 failed: .*shard 1 is failing/);
      const rows = await cluster.query<R>(cluster.spider, ROWS, ['partial-1']);
      assert.ok(
        rows.every((x) => !['init', 'replicated'].includes(x.BackupStatus)),
        JSON.stringify(rows),
      );
      if (rows.length > 0) assert.match(r.stderr, /set to cancel \(SPT0: \d+\)/);
    } finally {
      await cluster.exec(m1, 'DROP TRIGGER infodba_schema.refuse');
    }
    await cluster.waitReplicated();
    const check = await ws.cli('check', '-c', iniOf(s0), '--format', 'json');
    assert.deepEqual((JSON.parse(check.stdout) as { wouldRun: unknown[] }).wouldRun, [], 'no replica task is runnable');
  });
});

describe('schedule --wait: a whole global backup', () => {
  test('every host serves its tasks; the waiter reports progress and exits 0', async () => {
    const hosts = [[spiderIni], [iniOf(m0), iniOf(s1)], [iniOf(m1), iniOf(s0)]];
    const stops = hosts.map((files) => serveHost(files));
    try {
      const r = await ws.cli('schedule', '-c', spiderIni, '--wait', '--backup-id', 'e2e-ok');
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /e2e-ok: \d\/5 success, \d running, \d waiting, 0 failed/);
      assert.match(r.stdout, /e2e-ok: 5\/5 success, 0 running, 0 waiting, 0 failed/);
      assert.match(r.stdout, /every task succeeded/);
    } finally {
      await Promise.all(stops.map((s) => s()));
    }
    assert.deepEqual(
      ws
        .runs()
        .map((x) => x.kind)
        .sort(),
      ['remote', 'remote', 'remote', 'remote', 'spider'],
    );
  });

  test('one shard failing: exit 1, the failed task named; tasks nobody picks up are named', async () => {
    ws.writeAgentConfig({ schedule: { wait_interval: '300ms', unclaimed_after: '1s' } });
    ws.behave(m1.port, { exitCode: 1 });
    const waiter = ws.start(['schedule', '-c', spiderIni, '--wait', '--backup-id', 'e2e-fail']);
    let out = '';
    waiter.child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    const stops = [serveHost([spiderIni]), serveHost([iniOf(m0), iniOf(s1)])];
    try {
      await waitFor('the unserved host to be named', () => out.includes(`SPT1 127.0.0.1:${m1.port}: not picked up`), 60_000);
      stops.push(serveHost([iniOf(m1), iniOf(s0)]));
      const r = await waiter.result;
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /finished with failures; tasks not successful/);
      assert.match(r.stdout, new RegExp(`SPT1 .*${m1.port}.*failed: exit code 1`));
      assert.doesNotMatch(r.stdout, /SPT0 .*failed/);
    } finally {
      await Promise.all(stops.map((s) => s()));
      ws.writeAgentConfig({ schedule: { wait_interval: '300ms', unclaimed_after: '1h' } });
    }
  });
});

describe('schedule --wait: stalled tasks', () => {
  test('a task running while no agent holds its lock is named with host and port, not waited on silently', async () => {
    const waiter = ws.start(['schedule', '-c', spiderIni, '--wait', '--backup-id', 'e2e-dead']);
    let out = '';
    waiter.child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the schedule', () => out.includes('scheduled backup id e2e-dead'));
    // As if the host of SPT1 died mid-backup: running (past the claim grace, within which a
    // claimant may not hold its lock yet), but no supervisor holds the task's lock.
    await cluster.exec(
      m1,
      "UPDATE infodba_schema.global_backup SET BackupStatus = 'running', TaskPid = 999999, UpdatedAt = NOW() - INTERVAL 120 SECOND " +
        "WHERE BackupId = 'e2e-dead' AND Port = ?",
      [m1.port],
    );
    await waitFor(
      'the dead agent to be named',
      () => out.includes(`SPT1 127.0.0.1:${m1.port}: running (pid 999999) but no agent holds it`),
      60_000,
    );
    const stops = [serveHost([spiderIni]), serveHost([iniOf(m0), iniOf(s1), iniOf(s0)])];
    try {
      await cluster.exec(
        m1,
        "UPDATE infodba_schema.global_backup SET BackupStatus = 'failed: no pid' WHERE BackupId = 'e2e-dead' AND Port = ?",
        [m1.port],
      );
      const r = await waiter.result;
      assert.equal(r.code, 1);
      assert.match(r.stdout, new RegExp(`SPT1 .*${m1.port}.*failed: no pid`));
    } finally {
      await Promise.all(stops.map((x) => x()));
    }
  });

  test('a running backup whose supervisor holds the lock is not flagged', async () => {
    ws.behave(m0.port, { block: true });
    const waiter = ws.start(['schedule', '-c', spiderIni, '--wait', '--backup-id', 'e2e-alive']);
    let out = '';
    waiter.child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    const stops = [serveHost([spiderIni]), serveHost([iniOf(m0), iniOf(s1)]), serveHost([iniOf(m1), iniOf(s0)])];
    try {
      await waitFor('the blocked backup to run', () => ws.runs().some((x) => x.port === m0.port));
      const roundsBefore = (out.match(/e2e-alive: /g) ?? []).length;
      await waitFor('three more rounds', () => (out.match(/e2e-alive: /g) ?? []).length >= roundsBefore + 3, 60_000);
      assert.doesNotMatch(out, /no agent holds it/);
      ws.release(m0.port);
      assert.equal((await waiter.result).code, 0, out);
    } finally {
      ws.release(m0.port);
      await Promise.all(stops.map((x) => x()));
    }
  });
});

describe('query', () => {
  test('every task newest first, slaves read on the slaves; filters by id and status class; table and JSON', async () => {
    assert.equal((await ws.cli('schedule', '-c', spiderIni, '--backup-id', 'q-old')).code, 0);
    await new Promise((r) => setTimeout(r, 1100)); // CreatedAt has one-second resolution
    assert.equal((await ws.cli('schedule', '-c', spiderIni, '--backup-id', 'q-new')).code, 0);
    await cluster.waitReplicated();
    await cluster.exec(
      s0,
      "UPDATE infodba_schema.global_backup SET BackupStatus = 'failed: timeout' WHERE BackupId = 'q-old' AND Port = ?",
      [s0.port],
    );

    const table = await ws.cli('query', '-c', spiderIni);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /BackupId.*ServerName.*BackupStatus.*Host.*Port.*ShardValue.*CreatedAt/);
    assert.match(table.stdout, /10 rows/);
    assert.ok(table.stdout.indexOf('q-new') < table.stdout.indexOf('q-old'), 'newest first');

    const json = JSON.parse((await ws.cli('query', '-c', spiderIni, '--BackupId', 'q-old', '--format', 'json')).stdout) as Record<
      string,
      unknown
    >[];
    assert.equal(json.length, 5);
    assert.deepEqual(Object.keys(json[0] ?? {}), ['BackupId', 'ServerName', 'BackupStatus', 'Host', 'Port', 'ShardValue', 'CreatedAt']);
    const slaveRow = json.find((x) => x.Port === s0.port);
    assert.equal(slaveRow?.BackupStatus, 'failed: timeout', 'the slave row is read on the slave');

    const failed = JSON.parse((await ws.cli('query', '-c', spiderIni, '--BackupStatus=failed', '--format=json')).stdout) as Record<
      string,
      unknown
    >[];
    assert.deepEqual(
      failed.map((x) => [x.BackupId, x.Port]),
      [['q-old', s0.port]],
    );
    const two = JSON.parse(
      (await ws.cli('query', '-c', spiderIni, '--backupStatus=replicated,failed', '--format=json')).stdout,
    ) as unknown[];
    assert.equal(two.length, 4);
  });

  test('a bad --BackupId is refused, not passed into SQL', async () => {
    const r = await ws.cli('query', '-c', spiderIni, "--BackupId=1' UNION SELECT 1 -- ");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--BackupId "1' UNION SELECT 1 -- ": must be 1-40 characters/);
  });
});
