// `restore-point` on a real cluster: two shards on distinct loopback addresses (Spider's internal
// XA needs them), two Spider nodes with spider_internal_xa=ON, a cross-shard transfer workload
// through both. Every point is checked by restoring the shards from a base copy and replaying
// their binlogs to the point's GTIDs with mariadb-binlog: the balances must sum to the seeded total.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type TestCluster, type ClusterWorkspace } from './support/cluster.js';
import { binlogRangeOn, describeRange } from '../src/restore/binlog-inventory.js';
import { BankChecker, bankTotal, setupBank, startTransfers, unblockedPositions, type Transfers } from './support/transfer-workload.js';
import { DaemonProcess } from './support/daemon.js';
import { waitFor } from './support/workspace.js';

const POINTS = 20;
const CONTROLS = 4;

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let spiderIni: string;
let checker: BankChecker;
let transfers: Transfers | undefined;

interface PointJson {
  name: string;
  takenAt: string;
  pauseMs: number;
  acquireMs: number;
  holdMs: number;
  spiderNodes: number;
  shards: { serverName: string; host: string; port: number; gtid: string }[];
}

before(async () => {
  cluster = await setUpCluster({
    shards: 2,
    slaves: [0],
    hosts: 'distinct',
    spiders: 2,
    spiderInternalXa: true,
    tdbctl: true,
    workspaces: { ws: { serves: ['spider0'] } },
  });
  ({ ws } = cluster.workspaces);
  spiderIni = ws.dropIn(cluster.spider);
  await setupBank(cluster);
  checker = await BankChecker.create(cluster);
  // A DDL would wait for a BLOCK_DDL as well: the probe table exists before any block is taken.
  for (const s of cluster.spiders)
    await cluster.exec(s, 'CREATE TABLE infodba_schema.rp_probe (id INT PRIMARY KEY AUTO_INCREMENT) ENGINE=InnoDB');
});

after(async () => {
  await transfers?.stop().catch(() => {});
  await checker?.close();
  await cluster?.close();
});

function rootOn(inst: Instance) {
  return mysql.createConnection({ socketPath: inst.socket, user: 'root' });
}

/**
 * Whether a commit on `inst` goes through within about `seconds` (a local InnoDB write, which
 * BLOCK_COMMIT holds up). lock_wait_timeout bounds the wait: max_statement_time does not interrupt
 * a commit waiting for the backup lock.
 */
async function commitGoesThrough(inst: Instance, seconds: number): Promise<boolean> {
  const c = await rootOn(inst);
  try {
    await c.query('SET SESSION lock_wait_timeout = ?', [seconds]);
    await c.query('INSERT INTO infodba_schema.rp_probe () VALUES ()');
    return true;
  } catch (err) {
    if ((err as { errno?: number }).errno === 1205) return false;
    throw err;
  } finally {
    await c.end();
  }
}

describe('restore-point', { timeout: 600_000 }, () => {
  test(`${POINTS} points under a cross-shard workload through 2 Spider nodes are all consistent by binlog replay; unblocked reads are not`, async () => {
    transfers = await startTransfers(cluster, 8);
    await waitFor('transfers under way', () => transfers!.committed() > 50);
    const points: PointJson[] = [];
    for (let i = 0; i < POINTS; i++) {
      const r = await ws.cli('restore-point', `p${i}`, '-c', spiderIni, '--format', 'json');
      assert.equal(r.code, 0, r.stderr);
      points.push(JSON.parse(r.stdout) as PointJson);
    }
    const controls: string[][] = [];
    for (let i = 0; i < CONTROLS; i++) controls.push(await unblockedPositions(cluster, 20));
    const stats = await transfers.stop();
    transfers = undefined;
    const final = await unblockedPositions(cluster);

    for (const p of points) {
      assert.equal(p.spiderNodes, 2);
      assert.deepEqual(
        p.shards.map((s) => s.serverName),
        ['SPT0', 'SPT1'],
      );
    }
    const results = [];
    for (const p of points) results.push(await checker.check(p.shards.map((s) => s.gtid)));
    const controlResults = [];
    for (const c of controls) controlResults.push(await checker.check(c));
    const end = await checker.check(final);

    const pauses = points.map((p) => p.pauseMs).sort((a, b) => a - b);
    const median = pauses[Math.floor(pauses.length / 2)];
    process.stdout.write(
      `# transfers committed ${stats.committed}, failed ${stats.failed} ${JSON.stringify([...stats.errors])}\n` +
        `# points: consistent ${results.filter((r) => r.consistent).length}/${results.length}; pause ms median ${median} max ${pauses.at(-1)}; ` +
        `acquire ${JSON.stringify(points.map((p) => p.acquireMs))} hold ${JSON.stringify(points.map((p) => p.holdMs))}\n` +
        `# controls (no block): ${JSON.stringify(controlResults)}\n`,
    );
    assert.ok(end.consistent, `the workload's end state replays to the total: ${JSON.stringify(end)}`);
    assert.equal(end.sum, bankTotal());
    for (const [i, r] of results.entries())
      assert.ok(r.consistent, `point p${i} ${JSON.stringify(points[i]!.shards)}: ${JSON.stringify(r)}`);
    assert.ok(
      controlResults.some((r) => !r.consistent),
      `the check can fail: positions read without the block are inconsistent (${JSON.stringify(controlResults)})`,
    );
  });

  test('--list and --format json show the recorded points; a name is taken once', async () => {
    const list = await ws.cli('restore-point', '--list', '-c', spiderIni, '--format', 'json');
    assert.equal(list.code, 0, list.stderr);
    const points = JSON.parse(list.stdout) as PointJson[];
    const names = points.map((p) => p.name);
    for (let i = 0; i < POINTS; i++) assert.ok(names.includes(`p${i}`), `p${i} listed`);
    const first = points.find((p) => p.name === 'p0')!;
    assert.equal(first.shards.length, 2);
    assert.match(first.shards[0]!.gtid, /^\d+-\d+-\d+/);

    const table = await ws.cli('restore-point', '--list', '-c', spiderIni);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /p0 .*SPT0 \d+-\d+-\d+/s);

    // Every shard master holds its own row; its replica received it by replication.
    await cluster.waitReplicated();
    const onSlave = await cluster.query(
      cluster.slaves[0]!,
      'SELECT ServerName FROM infodba_schema.spiderbackup_restore_point WHERE Name = ?',
      ['p0'],
    );
    assert.deepEqual(onSlave, [{ ServerName: 'SPT0' }]);

    const again = await ws.cli('restore-point', 'p0', '-c', spiderIni);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /restore point "p0" already exists/);
    const bad = await ws.cli('restore-point', 'bad name;', '-c', spiderIni);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /restore point name "bad name;": must be 1-40 characters/);
  });

  test('a node that cannot get the block in time: the command releases every node, retries, gives up; writes continue', async () => {
    transfers = await startTransfers(cluster, 4);
    const holder = await rootOn(cluster.spiders[1]!);
    try {
      await holder.query('BACKUP STAGE START'); // one backup stage per server: ours must wait for it
      const before = transfers.committed();
      const r = await ws.cli('restore-point', 'blocked', '-c', spiderIni, '--acquire-timeout', '500ms', '--attempts', '3');
      assert.equal(r.code, 1, r.stdout);
      assert.match(
        r.stderr,
        /not taken after 3 attempts \(every node released each time\): attempt 1: commit block not acquired on [\d.]+:\d+: acquire timeout/,
      );
      assert.ok(await commitGoesThrough(cluster.spiders[0]!, 5), 'spider0 takes commits');
      await waitFor('transfers continue', () => transfers!.committed() > before + 20);
    } finally {
      await holder.query('BACKUP STAGE END').catch(() => {});
      await holder.end();
    }
    const ok = await ws.cli('restore-point', 'blocked', '-c', spiderIni, '--format', 'json');
    assert.equal(ok.code, 0, ok.stderr);
    await transfers.stop();
    transfers = undefined;
  });

  test('killed while it holds the block on one node: no node stays blocked', async () => {
    const holder = await rootOn(cluster.spiders[1]!);
    await holder.query('BACKUP STAGE START');
    const run = ws.start(['restore-point', 'killed', '-c', spiderIni, '--acquire-timeout', '60s', '--attempts', '1']);
    try {
      // The command now holds BLOCK_COMMIT on spider0 while it waits on spider1.
      await waitFor('spider1 waiting for the backup lock', async () => {
        const rows = await cluster.query(
          cluster.spiders[1]!,
          "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'BACKUP STAGE%' AND STATE LIKE '%backup lock%'",
        );
        return rows.length > 0;
      });
      await waitFor('spider0 blocks commits', async () => !(await commitGoesThrough(cluster.spiders[0]!, 1)));
      run.child.kill('SIGKILL');
      const res = await run.result;
      assert.equal(res.code, null);
      // The server ends the session of the killed client, and its block with it.
      await waitFor('spider0 takes commits again', () => commitGoesThrough(cluster.spiders[0]!, 2));
      const rows = await cluster.query(
        cluster.spider,
        'SELECT COUNT(*) AS n FROM infodba_schema.spiderbackup_restore_point WHERE Name = ?',
        ['killed'],
      );
      assert.equal(Number(rows[0].n), 0);
    } finally {
      run.child.kill('SIGKILL');
      await holder.query('BACKUP STAGE END').catch(() => {});
      await holder.end();
    }
  });

  test("one node's block killed before the positions were read: the point fails naming that node and records nothing", async () => {
    const [spider0, spider1] = cluster.spiders as [Instance, Instance];
    // spider0 (whose clock dates the point) cannot give the block at once: the command takes it on
    // spider1 first and holds it there while it waits; the test kills that session meanwhile.
    const holder = await rootOn(spider0);
    const killer = await rootOn(spider1);
    // Names the session holding the block by its thread id (installed before any block: it writes).
    const [plugins] = (await killer.query(
      "SELECT COUNT(*) AS n FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO'",
    )) as unknown as [{ n: number }[]];
    if (Number(plugins[0]?.n) === 0) await killer.query("INSTALL SONAME 'metadata_lock_info'");
    await holder.query('BACKUP STAGE START');
    const run = ws.start(['restore-point', 'lost-block', '-c', spiderIni, '--acquire-timeout', '60s', '--attempts', '1']);
    try {
      await waitFor('spider0 waiting for the backup lock', async () => {
        const rows = await cluster.query(
          spider0,
          "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'BACKUP STAGE%' AND STATE LIKE '%backup lock%'",
        );
        return rows.length > 0;
      });
      await waitFor('spider1 blocks commits', async () => !(await commitGoesThrough(spider1, 1)));
      const [holders] = (await killer.query(
        "SELECT DISTINCT THREAD_ID AS id FROM information_schema.METADATA_LOCK_INFO WHERE LOCK_TYPE = 'Backup lock'",
      )) as unknown as [{ id: number }[]];
      assert.equal(holders.length, 1, JSON.stringify(holders));
      await killer.query('KILL ?', [holders[0]!.id]);
      assert.ok(await commitGoesThrough(spider1, 5), 'with its block gone, spider1 takes commits again');
      await holder.query('BACKUP STAGE END');

      const res = await run.result;
      assert.equal(res.code, 1, res.stdout);
      assert.match(
        res.stderr,
        new RegExp(
          `"lost-block" not taken after 1 attempts .*commit block not held until the positions were read on ` +
            `${spider1.host.replaceAll('.', '\\.')}:${spider1.port}: `,
        ),
      );
      assert.doesNotMatch(res.stderr, new RegExp(`${spider0.host.replaceAll('.', '\\.')}:${spider0.port}: `), 'spider0 held its block');
      const rows = await cluster.query(
        cluster.spider,
        'SELECT COUNT(*) AS n FROM infodba_schema.spiderbackup_restore_point WHERE Name = ?',
        ['lost-block'],
      );
      assert.equal(Number(rows[0].n), 0, 'nothing recorded');
      assert.ok(await commitGoesThrough(spider0, 5), 'spider0 released');
    } finally {
      run.child.kill('SIGKILL');
      await holder.query('BACKUP STAGE END').catch(() => {});
      await holder.end();
      await killer.end();
    }
  });
});

describe('the binlogs a roll-forward to a point needs', { timeout: 300_000 }, () => {
  test('are listed per shard; purged ones are named', async () => {
    const r = await ws.cli('restore-point', '--list', '-c', spiderIni, '--format', 'json');
    const p0 = (JSON.parse(r.stdout) as PointJson[]).find((p) => p.name === 'p0')!;
    const m0 = cluster.masters[0]!;
    const conn = await rootOn(m0);
    const q = { query: async (sql: string, params?: unknown[]) => (await conn.query(sql, params))[0] };
    try {
      const before = await binlogRangeOn(q, checker.base[0]!, p0.shards[0]!.gtid);
      assert.ok(before.files.length > 0 && !before.gone && !before.notReached, describeRange('SPT0', before));
      await cluster.waitReplicated();
      await conn.query('FLUSH BINARY LOGS');
      const [[last]] = (await conn.query('SHOW MASTER STATUS')) as unknown as [{ File: string }[]];
      // A file a replica still reads is kept (with a warning) until it has moved on to the new one.
      await waitFor('older binlogs purged', async () => {
        await conn.query('PURGE BINARY LOGS TO ?', [last!.File]);
        const [logs] = (await conn.query('SHOW BINARY LOGS')) as unknown as [{ Log_name: string }[]];
        return logs[0]?.Log_name === last!.File;
      });
      const after = await binlogRangeOn(q, checker.base[0]!, p0.shards[0]!.gtid);
      assert.deepEqual(after.gone, { oldestKept: last!.File, domains: [0] });
      assert.match(describeRange('SPT0', after), /GONE: binlogs before mysql-bin\.\d+ were purged/);
    } finally {
      await conn.end();
    }
  });
});

describe('restore-point with a Spider node down', { timeout: 300_000 }, () => {
  test('is refused, never taken partially', async () => {
    const down = cluster.spiders[1]!;
    await cluster.stop(down);
    try {
      const r = await ws.cli('restore-point', 'partial', '-c', spiderIni, '--attempts', '2', '--acquire-timeout', '500ms');
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /restore point "partial" refused: Spider node unreachable: [\d.]+:\d+: connect ECONNREFUSED/);
      assert.ok(await commitGoesThrough(cluster.spiders[0]!, 5), 'spider0 takes commits');
      const rows = await cluster.query(
        cluster.spider,
        'SELECT COUNT(*) AS n FROM infodba_schema.spiderbackup_restore_point WHERE Name = ?',
        ['partial'],
      );
      assert.equal(Number(rows[0].n), 0);
    } finally {
      await cluster.start(down);
      await cluster.exec(down, 'SET GLOBAL spider_internal_xa = ON');
    }
  });
});

describe('every complete global backup gets a restore point', { timeout: 600_000 }, () => {
  let daemon: DaemonProcess | undefined;
  before(async () => {
    // One simulated host serving every instance: the agent of the spider master runs its spider task.
    ws.serve([...cluster.masters, ...cluster.slaves]);
    daemon = new DaemonProcess(ws);
    await daemon.ready();
  });
  after(async () => {
    await daemon?.dispose();
  });

  async function listed(name: string): Promise<(PointJson & { status: string }) | undefined> {
    const r = await ws.cli('restore-point', '--list', '-c', spiderIni, '--format', 'json');
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as (PointJson & { status: string })[]).find((p) => p.name === name);
  }

  test("the spider master's agent takes it once every task succeeded, after the last one", async () => {
    const r = await ws.cli('schedule', '--backup-id', 'gb1', '-c', spiderIni);
    assert.equal(r.code, 0, r.stderr);
    const point = await waitFor('restore point gb1', () => listed('gb1'), 120_000);
    assert.equal(point.status, 'taken');
    assert.equal(point.spiderNodes, 2);
    const rows = await cluster.query<{ BackupStatus: string; UpdatedAt: string }>(
      cluster.spider,
      "SELECT BackupStatus, DATE_FORMAT(UpdatedAt, '%Y-%m-%d %H:%i:%s') AS UpdatedAt FROM infodba_schema.global_backup WHERE BackupId = ? AND Wrapper != 'mysql_slave'",
      ['gb1'],
    );
    assert.ok(rows.length >= 3);
    for (const t of rows) {
      assert.equal(t.BackupStatus, 'success');
      assert.ok(t.UpdatedAt <= point.takenAt.slice(0, 19), `task updated ${t.UpdatedAt} is not after the point ${point.takenAt}`);
    }
    await daemon!.waitLog(/^backup id gb1: restore point gb1 at /);
  });

  test('schedule --wait reports it; --no-restore-point opts out', async () => {
    const r = await ws.cli('schedule', '--backup-id', 'gb2', '--wait', '-c', spiderIni);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /backup id gb2: restore point gb2 at \S+ \S+ \(SPT0 \d+-\d+-\d+, SPT1 \d+-\d+-\d+; commits paused (\d+ ms|\d+\.\d s|\d+m\d\ds|\d+h\d\dm\d\ds)\)/,
    );

    const no = await ws.cli('schedule', '--backup-id', 'gb3', '--no-restore-point', '--wait', '-c', spiderIni);
    assert.equal(no.code, 0, no.stderr);
    assert.match(no.stdout, /backup id gb3: no restore point \(scheduled with --no-restore-point\)/);
    assert.equal((await listed('gb3'))?.status, 'opted-out');
    await daemon!.waitLog(/^backup id gb3: no restore point/);

    // `list` and `verify` show each backup's point: when it was taken, or that there is none by choice.
    const history = await ws.cli('list', '-c', spiderIni, '--format', 'json');
    assert.equal(history.code, 0, history.stderr);
    const byId = new Map((JSON.parse(history.stdout) as { backupId: string; restorePoint: string | null }[]).map((b) => [b.backupId, b]));
    assert.equal(byId.get('gb2')?.restorePoint, (await listed('gb2'))?.takenAt);
    assert.equal(byId.get('gb3')?.restorePoint, 'opted-out');
    const verified = await ws.cli('verify', 'gb2', '-c', spiderIni);
    assert.match(
      verified.stdout,
      /restore point gb2: taken at \S+ \S+, 2 shards, commits paused (\d+ ms|\d+\.\d s|\d+m\d\ds|\d+h\d\dm\d\ds) on 2 Spider node\(s\)/,
    );
    assert.match((await ws.cli('verify', 'gb3', '-c', spiderIni)).stdout, /restore point gb3: none, by choice/);
  });

  test('restore-plan: per shard the backup to restore and the binlogs to replay; a point older than the backup is refused', async () => {
    const plan = await ws.cli('restore-plan', 'gb1', '--to-point', 'gb2', '-c', spiderIni);
    assert.equal(plan.code, 0, plan.stdout + plan.stderr);
    assert.match(plan.stdout, /SPT0 [\d.]+:\d+:\n {2}restore the master's backup, taken /);
    assert.match(plan.stdout, /SPT1 [\d.]+:\d+:\n {2}restore the master's backup/);
    assert.match(plan.stdout, /--stop-position=0-1-\d+ \(inclusive\) from the master's binlogs:\n {4}mysql-bin\.\d+/);
    assert.match(plan.stdout, /after the replay: XA: /);
    assert.match(plan.stdout, /mysql\.spider_xa_member/);

    const old = await ws.cli('restore-plan', 'gb2', '--to-point', 'gb1', '-c', spiderIni);
    assert.equal(old.code, 1);
    assert.match(old.stdout, /PROBLEM: restore point "gb1" .* is older than the end of .*binlogs cannot roll a restored shard back/);
    const none = await ws.cli('restore-plan', 'gb1', '--to-point', 'nope', '-c', spiderIni, '--format', 'json');
    assert.equal(none.code, 1);
    assert.deepEqual((JSON.parse(none.stdout) as { problems: string[] }).problems, ['no restore point named "nope"']);
  });
});
