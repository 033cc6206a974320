// Issue 19 item 4 on a real cluster with a posix repository: restores read their binlogs from the
// binlog archive, so a point stays reachable after every master purged its binlogs. The archive
// is made here as the daemon's archiver would lay it out (test/support/archive.ts). A global backup
// under the cross-shard transfer workload through both Spider nodes, points after it, the archive,
// every master's binlogs purged: `verify --restore-test --to-point` holds the seeded total from the
// archive; `--to-time` picks the newest point at or before the time and, without a backup id, the
// newest usable backup; one archived object deleted: `verify` and `restore-plan` name the hole and a
// plan across it is refused; the spider nodes stopped: the plan is read from the repository alone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAgentConfig } from '../src/config/agent.js';
import { configuredRepository } from '../src/repo/agent-repository.js';
import type { Repository } from '../src/repo/repository.js';
import { readShardArchive } from '../src/archive/archive-store.js';
import { covers, parseGtidPos } from '../src/archive/gtid.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { bankTotal, setupBank, startTransfers, type Transfers } from './support/transfer-workload.js';
import { waitFor } from './support/workspace.js';
import { archiveBinlogs } from './support/archive.js';

const PREFIX = 'ra';
const CHECK = ['--check-sql', 'SELECT SUM(balance) FROM bank.acct', '--expect', String(bankTotal())];

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let spiderIni: string;
let repoDir: string;
let repo: Repository;
let repository: Record<string, string>;
let transfers: Transfers | undefined;

interface PointJson {
  name: string;
  takenAt: string;
  shards: { shardValue: number; gtid: string }[];
}
interface PlanJson {
  ok: boolean;
  backupId: string;
  backupChosen?: boolean;
  requestedTime?: string;
  pointBeforeMs?: number;
  fromRepository?: string;
  point?: PointJson;
  shards: { backupGtid?: string; replay?: { source: string; file: string }[]; archiveGap?: { reason: string }; gapBlocks?: boolean }[];
}

before(async () => {
  repoDir = mkdtempSync(join(tmpdir(), 'sb-repo-archive-'));
  repository = { type: 'posix', path: repoDir, prefix: PREFIX };
  cluster = await setUpCluster({
    shards: 2,
    slaves: [],
    hosts: 'distinct',
    spiders: 2,
    spiderInternalXa: true,
    tdbctl: true,
    config: { repository },
    workspaces: { ws: { serves: ['spider0', 'master0', 'master1'], config: { backup: { runner: 'mariadb-backup' } } } },
  });
  ({ ws } = cluster.workspaces);
  spiderIni = ws.dropIn(cluster.spider);
  const r = await configuredRepository(loadAgentConfig(ws.agentIni));
  assert.ok(r);
  repo = r;
  await setupBank(cluster);
});

after(async () => {
  await transfers?.stop().catch(() => {});
  await cluster?.close();
  if (repoDir) rmSync(repoDir, { recursive: true, force: true });
});

async function backup(id: string): Promise<void> {
  const s = await ws.cli('schedule', '-c', spiderIni, `--backup-id=${id}`, '--no-restore-point');
  assert.equal(s.code, 0, s.stderr);
  const run = await ws.cli('check', '--run');
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
}

async function point(name: string): Promise<PointJson> {
  const p = await ws.cli('restore-point', name, '-c', spiderIni, '--format', 'json');
  assert.equal(p.code, 0, p.stderr);
  const json = JSON.parse(p.stdout) as PointJson;
  // As the daemon will record every point: its JSON in <prefix>/points/ (another engineer's part).
  mkdirSync(join(repoDir, PREFIX, 'points'), { recursive: true });
  writeFileSync(join(repoDir, PREFIX, 'points', `${name}.json`), p.stdout);
  return json;
}

async function plan(...args: string[]): Promise<PlanJson & { code: number | null; stderr: string }> {
  const r = await ws.cli('restore-plan', ...args, '-c', spiderIni, '--format', 'json');
  assert.ok(r.stdout.startsWith('{'), `${r.stdout}\n${r.stderr}`);
  return { ...(JSON.parse(r.stdout) as PlanJson), code: r.code, stderr: r.stderr };
}

/** A time on the database clock `ms` after `takenAt` ('YYYY-MM-DD HH:MM:SS.mmm'), with microseconds. */
function later(takenAt: string, ms: number): string {
  const t = new Date(`${takenAt.replace(' ', 'T')}Z`).getTime() + ms;
  return `${new Date(t).toISOString().replace('T', ' ').replace('Z', '')}250`;
}

let pa: PointJson;
let pb: PointJson;

describe('restores from the binlog archive', { timeout: 900_000 }, () => {
  test('after every master purged its binlogs, verify --restore-test --to-point holds the total from the archive', async () => {
    transfers = await startTransfers(cluster, 4);
    try {
      await waitFor('transfers under way', () => transfers!.committed() > 50);
      await backup('ga1');
      let n = transfers.committed();
      await waitFor('transfers after the backup', () => transfers!.committed() > n + 100, 120_000);
      pa = await point('pa');
      for (const m of cluster.masters) await cluster.exec(m, 'FLUSH BINARY LOGS');
      n = transfers.committed();
      await waitFor('transfers after pa', () => transfers!.committed() > n + 100, 120_000);
      pb = await point('pb');
      n = transfers.committed();
      await waitFor('transfers after pb', () => transfers!.committed() > n + 50, 120_000);
    } finally {
      const stats = await transfers.stop();
      transfers = undefined;
      process.stdout.write(`# transfers committed ${stats.committed}, failed ${stats.failed}\n`);
    }
    const archived = await archiveBinlogs(cluster, repo);
    process.stdout.write(`# archived ${archived.files} binlog file(s) in ${archived.segments} segment(s)\n`);
    assert.ok(archived.segments >= 2 * archived.files);
    for (const m of cluster.masters) {
      const [status] = await cluster.query<{ File: string }>(m, 'SHOW MASTER STATUS');
      await cluster.exec(m, 'PURGE BINARY LOGS TO ?', [status!.File]);
    }

    const pl = await plan('ga1', '--to-point', 'pa');
    assert.equal(pl.code, 0, JSON.stringify(pl));
    assert.equal(pl.point?.name, 'pa');
    assert.equal(pl.backupId, 'ga1');
    for (const s of pl.shards) {
      assert.ok((s.replay?.length ?? 0) > 0, JSON.stringify(s));
      assert.deepEqual([...new Set(s.replay!.map((f) => f.source))], ['archive']);
    }
    const text = await ws.cli('restore-plan', 'ga1', '--to-point', 'pa', '-c', spiderIni);
    assert.equal(text.code, 0, text.stdout);
    assert.match(text.stdout, /from the binlog archive, then the master:/);
    assert.match(text.stdout, /mysql-bin\.\d+ of \S+ from the binlog archive \(\d+ segment\(s\), \d+ bytes\)/);

    const v = await ws.cli('verify', 'ga1', '-c', spiderIni, '--restore-test', '--to-point', 'pa', ...CHECK);
    process.stdout.write(v.stdout);
    assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
    assert.equal(v.stdout.match(/restored \+ replayed to \S+ \(\d+ binlog file\(s\) from \S+; \d+ from the binlog archive\)/g)?.length, 2);
    assert.match(v.stdout, new RegExp(`sum ${bankTotal()}, as expected`));
    assert.equal(v.stdout.match(/binlog archive of shard \d: no hole from the backup's position/g)?.length, 2, v.stdout);
  });

  test('a point the archive does not reach yet: its runs, then the master from where it ends', async () => {
    transfers = await startTransfers(cluster, 4);
    try {
      await waitFor('transfers after the purge', () => transfers!.committed() > 100, 120_000);
      await point('pm');
    } finally {
      await transfers.stop();
      transfers = undefined;
    }
    const pl = await plan('ga1', '--to-point', 'pm');
    assert.equal(pl.code, 0, JSON.stringify(pl));
    for (const s of pl.shards) {
      assert.deepEqual([...new Set(s.replay!.map((f) => f.source))], ['archive', 'master'], JSON.stringify(s.replay));
      assert.match(s.archiveGap?.reason ?? '', /the archive ends at/);
      assert.notEqual(s.gapBlocks, true);
    }
    const text = await ws.cli('restore-plan', 'ga1', '--to-point', 'pm', '-c', spiderIni);
    assert.match(text.stdout, /mysql-bin\.\d+ from the master, after \d+-\d+-\d+/);
    assert.match(
      text.stdout,
      /the binlog archive stops short \(GAP after \S+ up to \S+: the archive ends at \S+\): the rest from the master/,
    );
    const v = await ws.cli('verify', 'ga1', '-c', spiderIni, '--restore-test', '--to-point', 'pm', ...CHECK);
    process.stdout.write(v.stdout);
    assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
    assert.equal(v.stdout.match(/restored \+ replayed to \S+ \(\d+ binlog file\(s\) from \S+; \d+ from the binlog archive\)/g)?.length, 2);
    assert.match(v.stdout, new RegExp(`sum ${bankTotal()}, as expected`));
  });

  test('--to-time: the newest point at or before the time, how far before it; without a backup id the newest usable backup', async () => {
    const t = later(pb.takenAt, 1500);
    const pl = await plan('--to-time', t);
    assert.equal(pl.code, 0, JSON.stringify(pl));
    assert.equal(pl.point?.name, 'pb');
    assert.equal(pl.point?.takenAt, pb.takenAt);
    assert.equal(pl.requestedTime, t);
    assert.equal(pl.pointBeforeMs, 1500.25);
    assert.equal(pl.backupId, 'ga1');
    assert.equal(pl.backupChosen, true);
    const text = await ws.cli('restore-plan', '--to-time', t, '-c', spiderIni);
    assert.equal(text.code, 0, text.stdout);
    assert.match(text.stdout, new RegExp(`restore point pb \\(taken ${pb.takenAt}\\) is the newest at or before ${t}: 1\\.5 s before it`));
    assert.match(text.stdout, /backup ga1: the newest in which every shard has a usable backup/);

    // Between pa and pb: pa.
    const mid = await plan('--to-time', later(pa.takenAt, 1));
    assert.equal(mid.point?.name, 'pa');

    // A newer backup is no use for pb (it ended after it), but is for a point after it.
    await backup('ga2');
    const still = await plan('--to-time', t);
    assert.equal(still.backupId, 'ga1');
    await point('pc');
    const newer = await plan('--to-point', 'pc');
    assert.equal(newer.backupId, 'ga2');
    assert.equal(newer.code, 0, JSON.stringify(newer));

    // Bad input: named, exit non-zero, no stack.
    const bad = await ws.cli('restore-plan', '--to-time', 'yesterday noon', '-c', spiderIni);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--to-time "yesterday noon": not a time/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /);
    const early = await ws.cli('restore-plan', '--to-time', '2000-01-01 00:00:00', '-c', spiderIni);
    assert.notEqual(early.code, 0);
    assert.match(early.stderr, /--to-time "2000-01-01 00:00:00": no restore point at or before it/);
    const vbad = await ws.cli('verify', '--restore-test', '--to-time', '2000-13-01 00:00:00', '-c', spiderIni);
    assert.notEqual(vbad.code, 0);
    assert.match(vbad.stderr, /--to-time "2000-13-01 00:00:00": not a time/);
  });

  test('one archived object deleted: verify and restore-plan name the hole; a plan across it is refused', async () => {
    const t = later(pb.takenAt, 1500);
    const target = parseGtidPos(pb.shards[0]!.gtid);
    const view = await readShardArchive(repo, 0);
    const hit = view.files.flatMap((f) =>
      f.segments
        .filter((s) => covers(parseGtidPos(s.endGtid), target) && !covers(parseGtidPos(s.startGtid), target))
        .map((s) => ({ f, s })),
    )[0];
    assert.ok(hit, 'a segment holds pb');
    const path = join(repoDir, `${hit.f.folder}${hit.s.object}`);
    const body = readFileSync(path);
    rmSync(path);
    try {
      const v = await ws.cli('verify', 'ga1', '-c', spiderIni);
      assert.match(
        v.stdout,
        new RegExp(
          `binlog archive of shard 0: GAP after \\S+ up to \\S+: ${hit.f.file.replace('.', '\\.')} of \\S+: .*${hit.s.object} is missing`,
        ),
      );
      const byName = await plan('ga1', '--to-point', 'pb');
      assert.equal(byName.code, 1);
      assert.equal(byName.shards[0]!.gapBlocks, true);
      assert.match(byName.shards[0]!.archiveGap?.reason ?? '', new RegExp(`${hit.s.object} is missing`));
      const byTime = await ws.cli('restore-plan', '--to-time', t, '-c', spiderIni);
      assert.equal(byTime.code, 1);
      assert.match(byTime.stdout, new RegExp(`PROBLEM: the binlog archive has a GAP after \\S+ up to \\S+: .*${hit.s.object} is missing`));
      const refused = await ws.cli('verify', '--restore-test', '--to-time', t, '-c', spiderIni);
      assert.equal(refused.code, 1);
      assert.match(refused.stdout, /REFUSED, nothing restored/);
      assert.match(refused.stdout, new RegExp(`the binlog archive has a hole the master does not fill either: GAP .*${hit.s.object}`));
    } finally {
      writeFileSync(path, body);
    }
    const back = await plan('--to-time', t);
    assert.equal(back.code, 0, JSON.stringify(back));
    // pb lies past a FLUSH BINARY LOGS: each shard replays runs of two archived files.
    assert.ok(
      back.shards.every((s) => (s.replay?.length ?? 0) >= 2),
      JSON.stringify(back.shards),
    );
    const v = await ws.cli('verify', '--restore-test', '--to-time', t, '-c', spiderIni, ...CHECK);
    process.stdout.write(v.stdout);
    assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
    assert.match(v.stdout, /restore point pb \(taken .*\) is the newest at or before/);
    assert.match(v.stdout, new RegExp(`sum ${bankTotal()}, as expected`));
  });

  test("a mariadb-dump backup: its snapshot's position mapped to a GTID in the archive once the master purged it", async () => {
    ws.writeAgentConfig({ backup: { runner: 'mariadb-dump' }, repository });
    transfers = await startTransfers(cluster, 4);
    try {
      let n = transfers.committed();
      await waitFor('transfers before the dump', () => transfers!.committed() > n + 50, 120_000);
      await backup('gd');
      n = transfers.committed();
      await waitFor('transfers after the dump', () => transfers!.committed() > n + 100, 120_000);
      await point('pd');
    } finally {
      await transfers.stop();
      transfers = undefined;
      ws.writeAgentConfig({ backup: { runner: 'mariadb-backup' }, repository });
    }
    await archiveBinlogs(cluster, repo);
    for (const m of cluster.masters) {
      const [status] = await cluster.query<{ File: string }>(m, 'SHOW MASTER STATUS');
      await cluster.exec(m, 'PURGE BINARY LOGS TO ?', [status!.File]);
    }
    const pl = await plan('gd', '--to-point', 'pd');
    assert.equal(pl.code, 0, JSON.stringify(pl));
    for (const s of pl.shards) {
      assert.match(s.backupGtid ?? '', /^\d+-\d+-\d+$/);
      assert.deepEqual([...new Set(s.replay!.map((f) => f.source))], ['archive']);
    }
    const v = await ws.cli('verify', 'gd', '-c', spiderIni, '--restore-test', '--to-point', 'pd', ...CHECK);
    process.stdout.write(v.stdout);
    assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
    assert.equal(v.stdout.match(/master's mariadb-dump backup \(\S+ \S+\) restored \+ replayed to/g)?.length, 2, v.stdout);
    assert.match(v.stdout, new RegExp(`sum ${bankTotal()}, as expected`));
  });

  test('the cluster unreachable: restore-plan and verify --restore-test from the repository alone', async () => {
    for (const s of cluster.spiders) await cluster.stop(s);
    const pl = await plan('ga1', '--to-point', 'pa');
    assert.equal(pl.code, 0, `${JSON.stringify(pl)}\n${pl.stderr}`);
    assert.match(pl.fromRepository ?? '', /the cluster cannot be reached/);
    assert.equal(pl.shards.length, 2);
    for (const s of pl.shards) assert.deepEqual([...new Set(s.replay!.map((f) => f.source))], ['archive']);
    const text = await ws.cli('restore-plan', '--to-time', later(pb.takenAt, 1500), '-c', spiderIni);
    assert.equal(text.code, 0, `${text.stdout}\n${text.stderr}`);
    assert.match(
      text.stdout,
      /the cluster cannot be reached .*: the manifests, the restore points and the binlog archive were read from the repository/,
    );
    assert.match(text.stdout, /backup ga1: the newest/);
    const v = await ws.cli('verify', '--restore-test', '--to-point', 'pa', '-c', spiderIni, ...CHECK);
    process.stdout.write(v.stdout);
    assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
    assert.match(v.stdout, new RegExp(`sum ${bankTotal()}, as expected`));
  });
});
