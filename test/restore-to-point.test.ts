// Issue 12 item 4 on a real cluster: a global backup made by the built-in mariadb-backup runner while
// a cross-shard transfer workload runs through both Spider nodes, a restore point taken after it,
// then `verify --restore-test --to-point`: every shard restored into a throw-away instance, rolled
// forward with its master's binlogs (fetched with mariadb-binlog) from the position the manifest
// recorded to the point's GTID; the balances summed over the restored shards must be the seeded
// total. The same with mariadb-dump, whose copy lacks the XA transactions Spider had prepared at its
// position (the replay prepares them again). A replica's backup restores from its master position;
// a purged binlog refuses the test with the file named.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type TestCluster, type ClusterWorkspace } from './support/cluster.js';
import { bankTotal, setupBank, startTransfers, type Transfers } from './support/transfer-workload.js';
import { waitFor } from './support/workspace.js';

const ID = 'gb-tp';
const CHECK = ['--check-sql', 'SELECT SUM(balance) FROM bank.acct', '--expect', String(bankTotal())];

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let spiderIni: string;
let transfers: Transfers | undefined;

interface PlanJson {
  ok: boolean;
  shards: {
    shard: { serverName: string; gtid: string };
    from: string;
    backupGtid?: string;
    start?: { binlogFile?: string };
    binlogs?: { files: string[] };
    purged?: string[];
  }[];
}

before(async () => {
  cluster = await setUpCluster({
    shards: 2,
    slaves: [1],
    hosts: 'distinct',
    spiders: 2,
    spiderInternalXa: true,
    tdbctl: true,
    workspaces: { ws: { serves: ['spider0', 'master0', 'master1', 'slave1'], config: { backup: { runner: 'mariadb-backup' } } } },
  });
  ({ ws } = cluster.workspaces);
  spiderIni = ws.dropIn(cluster.spider);
  await setupBank(cluster);
  await cluster.waitReplicated();
});

after(async () => {
  await transfers?.stop().catch(() => {});
  await cluster?.close();
});

const manifestOf = (inst: Instance) =>
  JSON.parse(readFileSync(join(ws.confDir, 'dbbak', ID, `${inst.host}_${inst.port}`, 'manifest.json'), 'utf8')) as {
    position: { gtid?: string; binlogFile?: string };
    masterPosition?: { gtid?: string; binlogFile?: string };
  };

async function plan(point: string): Promise<PlanJson & { code: number | null }> {
  const r = await ws.cli('restore-plan', ID, '--to-point', point, '-c', spiderIni, '--format', 'json');
  return { ...(JSON.parse(r.stdout) as PlanJson), code: r.code };
}

describe('verify --restore-test --to-point', { timeout: 600_000 }, () => {
  test('a backup taken under cross-shard transfers, rolled forward to a later point, holds the seeded total', async () => {
    transfers = await startTransfers(cluster, 4);
    try {
      await waitFor('transfers under way', () => transfers!.committed() > 50);
      const s = await ws.cli('schedule', '-c', spiderIni, `--backup-id=${ID}`, '--no-restore-point');
      assert.equal(s.code, 0, s.stderr);
      await cluster.waitReplicated();
      const run = await ws.cli('check', '--run');
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      const after = transfers.committed();
      await waitFor('transfers after the backup', () => transfers!.committed() > after + 100);
      const p = await ws.cli('restore-point', 'tp1', '-c', spiderIni);
      assert.equal(p.code, 0, p.stderr);
    } finally {
      const stats = await transfers.stop();
      transfers = undefined;
      process.stdout.write(`# transfers committed ${stats.committed}, failed ${stats.failed}\n`);
    }

    // The plan starts each shard at the position its backup's manifest recorded.
    const pl = await plan('tp1');
    assert.equal(pl.code, 0, JSON.stringify(pl));
    for (const [i, m] of cluster.masters.entries()) {
      const shard = pl.shards[i]!;
      assert.equal(shard.from, 'master');
      assert.equal(shard.backupGtid, manifestOf(m).position.gtid, `SPT${i}`);
      assert.match(shard.backupGtid ?? '', /^\d+-\d+-\d+/);
      assert.notEqual(shard.backupGtid, shard.shard.gtid, 'the workload wrote between the backup and the point');
      assert.ok((shard.binlogs?.files.length ?? 0) > 0);
    }
    const text = await ws.cli('restore-plan', ID, '--to-point', 'tp1', '-c', spiderIni);
    assert.match(text.stdout, /start position: after GTID \d+-\d+-\d+ \(mysql-bin\.\d+:\d+\)/);
    assert.match(text.stdout, /replay with mariadb-binlog --start-position=\d+-\d+-\d+ --stop-position=\d+-\d+-\d+ \(inclusive\)/);

    const t0 = Date.now();
    const v = await ws.cli('verify', ID, '-c', spiderIni, '--restore-test', '--to-point', 'tp1', ...CHECK);
    const ms = Date.now() - t0;
    process.stdout.write(`# verify --restore-test --to-point (2 shards, mariadb-backup): ${ms} ms\n${v.stdout}`);
    assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
    for (const [i, m] of cluster.masters.entries())
      assert.match(
        v.stdout,
        new RegExp(
          `restore test SPT${i} ${m.host}:${m.port} shard ${i}: master's mariadb-backup backup \\(SPT${i} \\S+\\) restored \\+ replayed to ${pl.shards[i]!.shard.gtid} \\(\\d+ binlog file\\(s\\) from ${pl.shards[i]!.backupGtid}\\)`,
        ),
      );
    assert.match(v.stdout, new RegExp(`check: SPT0 \\d+, SPT1 \\d+; sum ${bankTotal()}, as expected`));
    assert.match(v.stdout, /restore test to point tp1: 2 shard\(s\) in (\d+ ms|\d+\.\d s|\d+m\d\ds|\d+h\d\dm\d\ds)$/m);
  });

  test('a mariadb-dump backup under the same workload: XA transactions prepared at its position are prepared again; the total holds', async () => {
    ws.writeAgentConfig({ backup: { runner: 'mariadb-dump' } });
    const id = 'gb-dump';
    transfers = await startTransfers(cluster, 4);
    try {
      const s = await ws.cli('schedule', '-c', spiderIni, `--backup-id=${id}`, '--no-restore-point');
      assert.equal(s.code, 0, s.stderr);
      await cluster.waitReplicated();
      const run = await ws.cli('check', '--run');
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      const after = transfers.committed();
      await waitFor('transfers after the backup', () => transfers!.committed() > after + 100);
      const p = await ws.cli('restore-point', 'tp-dump', '-c', spiderIni);
      assert.equal(p.code, 0, p.stderr);
    } finally {
      await transfers.stop();
      transfers = undefined;
      ws.writeAgentConfig({ backup: { runner: 'mariadb-backup' } });
    }
    const t0 = Date.now();
    const v = await ws.cli('verify', id, '-c', spiderIni, '--restore-test', '--to-point', 'tp-dump', ...CHECK);
    process.stdout.write(`# verify --restore-test --to-point (2 shards, mariadb-dump): ${Date.now() - t0} ms\n${v.stdout}`);
    assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
    assert.equal(v.stdout.match(/master's mariadb-dump backup \(\S+ \S+\) restored \+ replayed to \d+-\d+-\d+/g)?.length, 2, v.stdout);
    assert.match(v.stdout, new RegExp(`sum ${bankTotal()}, as expected`));
  });

  test("a shard whose master's backup failed is restored from its replica's, at the master position it recorded", async () => {
    const slave = cluster.slaves[0]!;
    const recorded = manifestOf(slave).masterPosition;
    // --slave-info: the master's GTID position, or its file/offset under file-based replication (the sandbox's).
    assert.ok(recorded?.gtid || recorded?.binlogFile, `the replica's manifest records its master's position: ${JSON.stringify(recorded)}`);
    const m1 = cluster.masters[1]!;
    await cluster.exec(
      cluster.spider,
      "UPDATE infodba_schema.global_backup SET BackupStatus = 'failed' WHERE BackupId = ? AND Host = ? AND Port = ?",
      [ID, m1.host, m1.port],
    );
    // The point must come after every task's end (binlogs only roll forward).
    await new Promise((r) => setTimeout(r, 1100));
    const p = await ws.cli('restore-point', 'tp2', '-c', spiderIni);
    assert.equal(p.code, 0, p.stderr);
    const pl = await plan('tp2');
    assert.equal(pl.code, 0, JSON.stringify(pl));
    assert.equal(pl.shards[1]!.from, 'replica');
    if (recorded!.gtid) assert.equal(pl.shards[1]!.backupGtid, recorded!.gtid);
    assert.match(pl.shards[1]!.backupGtid ?? '', /^\d+-\d+-\d+/);

    const v = await ws.cli('verify', ID, '-c', spiderIni, '--restore-test', '--to-point', 'tp2', ...CHECK);
    assert.equal(v.code, 1, 'verify itself fails: a task failed');
    assert.match(v.stdout, /^FAIL +SPT1 /m);
    assert.match(
      v.stdout,
      new RegExp(`restore test SPT1 \\S+ shard 1: replica's mariadb-backup backup \\(\\S+ ${slave.host}:${slave.port}\\) restored`),
    );
    assert.match(v.stdout, new RegExp(`sum ${bankTotal()}, as expected`));
    assert.doesNotMatch(v.stdout, /restore test to point tp2: .*FAILED/);
  });

  test('a needed binlog purged from a shard master: refused, nothing restored, the files named', async () => {
    const m0 = cluster.masters[0]!;
    const startFile = manifestOf(m0).position.binlogFile!;
    await cluster.exec(m0, 'FLUSH BINARY LOGS');
    const [status] = await cluster.query<{ File: string }>(m0, 'SHOW MASTER STATUS');
    await cluster.exec(m0, 'PURGE BINARY LOGS TO ?', [status!.File]);

    const pl = await plan('tp1');
    assert.equal(pl.code, 1);
    assert.equal(pl.shards[0]!.purged?.[0], startFile);
    const text = await ws.cli('restore-plan', ID, '--to-point', 'tp1', '-c', spiderIni);
    assert.match(
      text.stdout,
      new RegExp(`PROBLEM: ${startFile.replace('.', '\\.')}.* purged from the master \\(oldest kept: ${status!.File}\\)`),
    );

    const v = await ws.cli('verify', ID, '-c', spiderIni, '--restore-test', '--to-point', 'tp1', ...CHECK);
    assert.equal(v.code, 1);
    assert.match(v.stdout, /restore test to point tp1 REFUSED, nothing restored:/);
    assert.match(v.stdout, new RegExp(`SPT0 \\S+ shard 0: the replay needs ${startFile.replace('.', '\\.')}.*, purged from the master`));
    assert.doesNotMatch(v.stdout, /restored \+ replayed/);
  });
});
