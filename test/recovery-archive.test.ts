// Issue 20's restore targets and the binlog archive, on real instances: a small source (1 shard, a
// posix repository, the mariadb-dump runner, its binlogs archived as the archiver lays them out)
// and a bare target (no infodba_schema) on other loopback addresses, served by an agent on the
// same repository with the archive on (its default). The agent creates the schema and announces
// itself, so `restore --dry-run` finds the target served; an empty target is not archived into the
// source shard's archive; a scratch target whose agent archives is refused, named. The restore
// itself: nothing of the target is archived while it runs; afterwards its archive starts at its
// binlog file after the point, and the source point's restore plan is what it was.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAgentConfig } from '../src/config/agent.js';
import { configuredRepository } from '../src/repo/agent-repository.js';
import type { Repository } from '../src/repo/repository.js';
import { readShardArchive } from '../src/archive/archive-store.js';
import { covers, parseGtidPos } from '../src/archive/gtid.js';
import { restorePlanFromRepository } from '../src/restore/repo-plan.js';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { DaemonProcess } from './support/daemon.js';
import { bankTotal, setupBank } from './support/transfer-workload.js';
import { waitFor } from './support/workspace.js';
import { archiveBinlogs } from './support/archive.js';
import { setUpTargets, waitForPresence, writePasswordFile, writeTargetFile } from './support/restore-clusters.js';

const PREFIX = 'ra';
const BACKUP = 'gra1';
const POINT = 'pra1';

let source: TestCluster<'ws'>;
let targets: TestCluster<'tws'> | undefined;
let ws: ClusterWorkspace;
let agent: DaemonProcess | undefined;
let repoDir: string;
let tmp: string;
let repo: Repository;
let passwordFile: string;
let pointGtid: string;
let repository: Record<string, string>;

const targetFile = (name: string, extra: Record<string, unknown> = {}): string =>
  writeTargetFile(join(tmp, name), targets!, passwordFile, { extra });

/** The shard archive's files of one instance: name, start, segments. */
async function archivedFilesOf(inst: Instance): Promise<{ file: string; fileStart: string; segments: number }[]> {
  const { files } = await readShardArchive(repo, 0);
  return files
    .filter((f) => f.host === inst.host && f.port === inst.port)
    .map((f) => ({ file: f.file, fileStart: f.fileStart, segments: f.segments.length }))
    .sort((a, b) => (a.file < b.file ? -1 : 1));
}

/** The source point's plan for shard 0 as data: which files of which server, up to where. */
async function planOfPoint(): Promise<string[]> {
  const plan = await restorePlanFromRepository(repo, { backupId: BACKUP, pointName: POINT, repo }, 'the test reads the repository alone');
  assert.deepEqual(plan.problems, []);
  return plan.shards.flatMap((s) =>
    (s.archiveRuns ?? []).map(
      (r) => `${r.file.host}:${r.file.port} ${r.file.file} ${r.segments.length} segment(s) ${r.startGtid} → ${r.stopGtid}`,
    ),
  );
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sb-restore-archive-'));
  repoDir = mkdtempSync(join(tmpdir(), 'sb-repo-restore-archive-'));
  passwordFile = writePasswordFile(tmp);
  repository = { type: 'posix', path: repoDir, prefix: PREFIX };
  source = await setUpCluster({
    shards: 1,
    slaves: [],
    hosts: 'distinct',
    spiders: 1,
    tdbctl: true,
    config: { repository },
    workspaces: {
      ws: { serves: ['spider0', 'master0'], config: { backup: { runner: 'mariadb-dump' }, archive: { binlogs: 'off' } } },
    },
  });
  ({ ws } = source.workspaces);
  const r = await configuredRepository(loadAgentConfig(ws.agentIni));
  assert.ok(r);
  repo = r;
  await setupBank(source);
});

after(async () => {
  await agent?.dispose();
  await targets?.close();
  await source?.close();
  if (repoDir) rmSync(repoDir, { recursive: true, force: true });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('restore targets and the binlog archive', { timeout: 600_000 }, () => {
  test('set-up: backup, point, archive; a bare target gets infodba_schema and its presence from its agent, and is not archived', async () => {
    const spiderIni = ws.dropIn(source.spider);
    const s = await ws.cli('schedule', '-c', spiderIni, `--backup-id=${BACKUP}`, '--no-restore-point');
    assert.equal(s.code, 0, s.stderr);
    const run = await ws.cli('check', '--run');
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    // Transfers (the total stays) after the backup, before and after the point.
    const move = async (n: number) => {
      for (let i = 0; i < n; i++)
        await source.exec(source.spider, 'UPDATE bank.acct SET balance = balance + IF(id = ?, 1, -1) WHERE id IN (?, ?)', [i, i, i + 1]);
    };
    await move(20);
    const p = await ws.cli('restore-point', POINT, '-c', spiderIni, '--format', 'json');
    assert.equal(p.code, 0, p.stderr);
    mkdirSync(join(repoDir, PREFIX, 'points'), { recursive: true });
    writeFileSync(join(repoDir, PREFIX, 'points', `${POINT}.json`), p.stdout);
    await move(10);
    await archiveBinlogs(source, repo);

    // The target: bare (no infodba_schema), its agent archiving (the default with a repository).
    targets = await setUpTargets(41, {
      shards: 1,
      bare: true,
      config: { repository, archive: { max_lag: '3s' } },
      workspaces: { tws: { serves: ['master0', 'spider0'] } },
    });
    const t = targets;
    const m0 = t.masters[0]!;
    const schemas = await t.query<{ n: number }>(
      m0,
      "SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'infodba_schema'",
    );
    assert.equal(Number(schemas[0]!.n), 0, 'a bare target has no infodba_schema');
    agent = new DaemonProcess(t.workspaces.tws);
    await agent.ready();
    await waitForPresence(t, [m0, t.spider]);
    // Its archiver knows the master and waits: empty, while shard 0's archive is the source's.
    const note = await waitFor('the archive note of the target master', async () => {
      const rows = await t.query<{ ArchiveNote: string }>(
        m0,
        'SELECT ArchiveNote FROM infodba_schema.spiderbackup_presence WHERE Port = ?',
        [m0.port],
      );
      return rows[0]?.ArchiveNote || undefined;
    });
    assert.match(note, /not archived yet: it holds no schema but the system ones while shard 0's archive holds /);
    assert.deepEqual(await archivedFilesOf(m0), []);
  });

  test('--dry-run: the bare target is served by its agent; as scratch, its archiving agent is refused, named', async () => {
    const t = targets!;
    const m0 = t.masters[0]!;
    const file = targetFile('target.json');
    const r = await ws.cli('restore', BACKUP, '--to-point', POINT, '--target', file, '--dry-run');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stdout, /no agent serves it/);
    assert.match(r.stdout, /dry run: every check passed; nothing was written/);

    const scratch = targetFile('scratch.json', { scratch: true });
    const s = await ws.cli('restore', BACKUP, '--to-point', POINT, '--target', scratch, '--dry-run');
    assert.equal(s.code, 1, s.stdout);
    assert.match(
      s.stdout,
      new RegExp(
        `PROBLEM: ${m0.host}:${m0.port} \\(master of shard 0 in ${scratch}\\): scratch, but its agent \\(pid \\d+ on \\S+\\) archives its binlogs ` +
          `into the repository: a scratch target must never be archived; set \\[archive\\] binlogs = off in the agent config on \\S+`,
      ),
    );
    // The spider node is never archived: not named.
    assert.doesNotMatch(s.stdout, new RegExp(`PROBLEM: ${t.spider.host}:${t.spider.port}`));
  });

  test('the restore: nothing of the target archived while it runs; then its archive starts at its file after the point; the point plan unchanged', async () => {
    const t = targets!;
    const m0 = t.masters[0]!;
    const planBefore = await planOfPoint();
    assert.ok(planBefore.length > 0);
    const r = await ws.cli('restore', BACKUP, '--to-point', POINT, '--target', targetFile('target.json'));
    process.stdout.write(r.stdout);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /done, routed in /);
    assert.ok(agent!.log('binlog archive: a restore starts on it; its archiver stops'), 'the archiver let go before the worker started');
    // Nothing of it was archived: not its wait, not the load, not the replay.
    assert.deepEqual(await archivedFilesOf(m0), []);
    // Where the restore left it (the agent's own writes go on after it).
    pointGtid = /shard 0: reached GTID (\S+)/.exec(r.stdout)?.[1] ?? '';
    assert.notEqual(pointGtid, '', r.stdout);
    const logs = await t.query<{ Log_name: string }>(m0, 'SHOW BINARY LOGS');
    const current = logs.at(-1)!.Log_name;
    assert.ok(logs.length >= 2, 'the restore left the master at a new file');

    // Its own history after the point: archived from that file on, alone.
    await t.exec(t.spider, 'UPDATE bank.acct SET balance = balance + IF(id = 3, 5, -5) WHERE id IN (3, 4)');
    agent!.signal('SIGHUP');
    const files = await waitFor(
      'the restored master archived',
      async () => {
        const f = await archivedFilesOf(m0);
        return f.some((x) => x.segments > 0) ? f : undefined;
      },
      120_000,
    );
    assert.deepEqual(
      files.map((f) => f.file),
      [current],
    );
    assert.ok(
      covers(parseGtidPos(files[0]!.fileStart), parseGtidPos(pointGtid)),
      `${files[0]!.fileStart} starts at the point ${pointGtid}`,
    );
    // The source's point is restored as before: its plan reads the source's files only.
    assert.deepEqual(await planOfPoint(), planBefore);
    const [sum] = await t.query<{ s: string }>(t.spider, 'SELECT SUM(balance) AS s FROM bank.acct');
    assert.equal(Number(sum!.s), bankTotal());
  });
});
