// Issue 19 items 3 and 5 on a real cluster with a posix repository: the daemon of the primary
// spider node's host takes a restore point every [schedule] restore_point_interval (2 s here)
// while the cross-shard transfer workload runs through both Spider nodes; each point is recorded
// (rows on every shard master) and written to `<prefix>/points/<name>.json`, and two of them are
// restored to with `verify --restore-test --to-point`. A point that cannot be taken (a shard master
// down) is counted and logged; the daemon goes on and the next slot takes one again. `expire`
// then removes the automatic points older than the oldest kept backup and the archived binlog
// files (a small archive built from the masters' real binlogs) that backup no longer needs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ARCHIVE_FORMAT, type FileIndex } from '../src/archive/archive-index.js';
import { fileFolderKey, INDEX_OBJECT, storeSegment } from '../src/archive/archive-store.js';
import { BinlogScanner } from '../src/archive/binlog-scan.js';
import { loadAgentConfig } from '../src/config/agent.js';
import { configuredRepository } from '../src/repo/agent-repository.js';
import type { Repository } from '../src/repo/repository.js';
import { fetchBinlogs } from '../src/restore/binlog-replay.js';
import { ADMIN_PASSWORD, ADMIN_USER, type Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { DaemonProcess, freePort } from './support/daemon.js';
import { parseExposition, promtool, valueOf } from './support/prom.js';
import { bankTotal, setupBank, startTransfers, type Transfers } from './support/transfer-workload.js';
import { waitFor } from './support/workspace.js';

const PREFIX = 'c1';
const CHECK = ['--check-sql', 'SELECT SUM(balance) FROM bank.acct', '--expect', String(bankTotal())];
const AUTO = /^auto-\d{8}-\d{6}$/;

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let spiderIni: string;
let repoDir: string;
let metricsPort: number;
let transfers: Transfers | undefined;
let daemon: DaemonProcess | undefined;

interface PointJson {
  name: string;
  takenAt: string;
  pauseMs: number;
  complete: boolean;
  status: string;
  shards: { serverName: string; shardValue: number; host: string; port: number; gtid: string }[];
}

const agentConfig = (repoPath: string, interval = '2s') => ({
  backup: { runner: 'mariadb-backup' },
  schedule: { restore_point_interval: interval },
  metrics: { listen: `127.0.0.1:${metricsPort}` },
  repository: { type: 'posix', path: repoPath, prefix: PREFIX },
});

before(async () => {
  repoDir = mkdtempSync(join(tmpdir(), 'sb-points-repo-'));
  metricsPort = await freePort();
  cluster = await setUpCluster({
    shards: 2,
    slaves: [1],
    hosts: 'distinct',
    spiders: 2,
    spiderInternalXa: true,
    tdbctl: true,
    workspaces: {
      ws: {
        serves: ['spider0', 'master0', 'master1', 'slave1'],
        config: agentConfig(repoDir),
      },
    },
  });
  ({ ws } = cluster.workspaces);
  spiderIni = ws.dropIn(cluster.spider);
  await setupBank(cluster);
  await cluster.waitReplicated();
});

after(async () => {
  await transfers?.stop().catch(() => {});
  if (daemon) {
    daemon.signal('SIGTERM');
    await daemon.exited;
    await daemon.dispose();
  }
  await cluster?.close();
  if (repoDir) rmSync(repoDir, { recursive: true, force: true });
});

async function backup(id: string): Promise<void> {
  const s = await ws.cli('schedule', '-c', spiderIni, `--backup-id=${id}`, '--no-restore-point');
  assert.equal(s.code, 0, s.stderr);
  await cluster.waitReplicated();
  const run = await ws.cli('check', '--run');
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
}

async function points(): Promise<PointJson[]> {
  const r = await ws.cli('restore-point', '--list', '-c', spiderIni, '--format', 'json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as PointJson[];
}

/** A database-clock time ('YYYY-MM-DD HH:MM:SS.mmm') one millisecond earlier. */
function justBefore(t: string): string {
  const ms = Date.parse(`${t.replace(' ', 'T')}Z`) - 1;
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

const autoNames = async (): Promise<string[]> => (await points()).map((p) => p.name).filter((n) => AUTO.test(n));
const pointFile = (name: string) => join(repoDir, PREFIX, 'points', `${name}.json`);

/** The automatic point names recorded on one shard master (its own rows of the point table). */
async function rowsOn(m: Instance): Promise<string[]> {
  const rows = await cluster.query<{ Name: string }>(
    m,
    "SELECT DISTINCT Name FROM infodba_schema.spiderbackup_restore_point WHERE Name LIKE 'auto-%' ORDER BY Name",
  );
  return rows.map((r) => r.Name);
}

async function scrape(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

function startDaemon(): DaemonProcess {
  daemon = new DaemonProcess(ws);
  return daemon;
}

async function stopDaemon(d: DaemonProcess): Promise<void> {
  d.signal('SIGTERM');
  const exit = await d.exited;
  await d.dispose();
  daemon = undefined;
  assert.equal(exit.code, 0, d.stderr);
  assert.ok(d.log('daemon stopped'));
}

/** Every file below `dir`, relative. */
function filesBelow(dir: string, base = dir): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesBelow(join(dir, e.name), base) : [relative(base, join(dir, e.name))]))
    .sort();
}

const pct = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;

describe('automatic restore points', { timeout: 900_000 }, () => {
  let afterB1: string[] = [];

  test('every 2 s under cross-shard transfers: at least 5, each complete, in the table and the repository, restorable', async () => {
    await backup('ap-b1');
    transfers = await startTransfers(cluster, 4);
    const d = startDaemon();
    let elapsedMs: number;
    try {
      await d.ready();
      const t0 = Date.now();
      // Six points at 2 s apart: 12 s when the machine keeps up (counted, never timed).
      await waitFor('6 automatic points', async () => (await autoNames()).length >= 6, 180_000);
      elapsedMs = Date.now() - t0;
      const text = await scrape();
      const r = await promtool(['check', 'metrics'], text);
      assert.equal(r.code, 0, `promtool check metrics:\n${r.output}`);
      const e = parseExposition(text);
      assert.ok(valueOf(e, 'spiderbackup_restore_point_pause_seconds_count') >= 6);
      assert.equal(valueOf(e, 'spiderbackup_restore_point_failures_total'), 0);
    } finally {
      const stats = await transfers.stop();
      transfers = undefined;
      process.stdout.write(`# transfers committed ${stats.committed}, failed ${stats.failed}\n`);
    }
    await stopDaemon(d);

    const list = (await points()).filter((p) => AUTO.test(p.name));
    assert.ok(list.length >= 6, JSON.stringify(list.map((p) => p.name)));
    for (const p of list) {
      assert.equal(p.complete, true, p.name);
      assert.equal(p.status, 'taken', p.name);
      assert.equal(p.shards.length, 2, p.name);
      for (const s of p.shards) assert.match(s.gtid, /^\d+-\d+-\d+/, `${p.name} ${s.serverName}`);
      // Slots are multiples of the interval since the epoch: even seconds, one point each.
      assert.equal(Number(p.name.slice(-2)) % 2, 0, p.name);
      // The repository holds what `restore-point --format json` shows.
      assert.deepEqual(JSON.parse(readFileSync(pointFile(p.name), 'utf8')), p, p.name);
      assert.ok(d.log(new RegExp(`^automatic restore point ${p.name} at .*; written to posix `)), p.name);
    }
    assert.equal(new Set(list.map((p) => p.name)).size, list.length);
    for (const m of cluster.masters)
      assert.deepEqual(await rowsOn(m), list.map((p) => p.name).sort(), `${m.name} holds its row of every point`);
    const pauses = list.map((p) => p.pauseMs).sort((a, b) => a - b);
    process.stdout.write(
      `# ${list.length} automatic points in ${elapsedMs} ms (interval 2 s); pause p50 ${pct(pauses, 0.5)} ms, max ${pauses.at(-1)} ms ` +
        `(${pauses.join(' ')})\n`,
    );

    // Each is the one `--to-time` reaches from its own time (and from just before the next one).
    const byTime = [...list].sort((a, b) => (a.takenAt < b.takenAt ? -1 : 1));
    for (const [i, p] of byTime.entries()) {
      const next = byTime[i + 1];
      for (const t of [p.takenAt, ...(next ? [justBefore(next.takenAt)] : [])]) {
        const r = await ws.cli('restore-plan', '--to-time', t, '-c', spiderIni, '--format', 'json');
        assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
        const plan = JSON.parse(r.stdout) as { backupId: string; requestedTime: string; point: { name: string } };
        assert.equal(plan.point.name, p.name, `--to-time ${t}`);
        assert.equal(plan.backupId, 'ap-b1', `--to-time ${t}`);
      }
    }

    // Two of them (oldest first: the second and the last) restored from the backup before them,
    // the last one named by its time and without a backup id.
    const names = list.map((p) => p.name).sort();
    afterB1 = names;
    const last = byTime.at(-1) as PointJson;
    for (const how of [
      ['ap-b1', '--to-point', names[1] as string],
      ['--to-time', last.takenAt],
    ]) {
      const v = await ws.cli('verify', ...how.slice(0, -2), '-c', spiderIni, '--restore-test', ...how.slice(-2), ...CHECK);
      process.stdout.write(`# verify ${how.join(' ')}:\n${v.stdout}`);
      assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
      assert.match(v.stdout, new RegExp(`sum ${bankTotal()}, as expected`));
    }
  });

  test('`restore-point` with a repository that cannot be written: the point is taken, the output says it is not in the repository', async () => {
    const notADir = join(repoDir, 'not-a-directory');
    writeFileSync(notADir, '');
    ws.writeAgentConfig(agentConfig(notADir));
    try {
      const r = await ws.cli('restore-point', 'ap-norepo', '-c', spiderIni);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^restore point ap-norepo taken at /);
      assert.doesNotMatch(r.stdout, /written to the repository/);
      assert.match(r.stderr, /warning: restore point "ap-norepo" recorded, but not written to the repository: /);
      const p = (await points()).find((x) => x.name === 'ap-norepo');
      assert.equal(p?.complete, true);
    } finally {
      ws.writeAgentConfig(agentConfig(repoDir));
      rmSync(notADir);
    }
    const r = await ws.cli('restore-point', 'ap-repo', '-c', spiderIni);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^written to the repository: posix ${repoDir}:${PREFIX}/points/ap-repo\\.json$`, 'm'));
    assert.equal(JSON.parse(readFileSync(pointFile('ap-repo'), 'utf8')).name, 'ap-repo');
  });

  test('a point that cannot be taken (a shard master down): counted and logged, the daemon goes on, the next slot takes one', async () => {
    const m1 = cluster.masters[1] as Instance;
    const d = startDaemon();
    try {
      await d.ready();
      const first = await d.waitLog(/^automatic restore point auto-\S+ at /, 60_000);
      await cluster.stop(m1);
      try {
        const failed = await d.waitLog(/^automatic restore point auto-\S+ not taken: /, 120_000);
        assert.equal(failed.level, 50);
        const text = await scrape();
        const r = await promtool(['check', 'metrics'], text);
        assert.equal(r.code, 0, `promtool check metrics:\n${r.output}`);
        assert.ok(valueOf(parseExposition(text), 'spiderbackup_restore_point_failures_total') >= 1);
        // A later slot fails as well: the loop goes on.
        await waitFor('a second failed slot', () => d.lines.filter((l) => / not taken: /.test(l.msg)).length >= 2, 120_000);
        assert.equal(d.child.exitCode, null);
      } finally {
        await cluster.start(m1);
      }
      const failures = d.lines.filter((l) => / not taken: /.test(l.msg)).length;
      // Once the master is back, a later slot takes its point again.
      const lastFailure = d.lines.map((l) => / not taken: /.test(l.msg)).lastIndexOf(true);
      await waitFor(
        'a point after the master came back',
        () => d.lines.slice(lastFailure + 1).find((l) => /^automatic restore point auto-\S+ at /.test(l.msg)),
        180_000,
      );
      const e = parseExposition(await scrape());
      assert.ok(valueOf(e, 'spiderbackup_restore_point_failures_total') >= 2);
      process.stdout.write(`# failed slots while SPT1 was down: ${failures}; first point ${first.msg.split(' ')[3]}\n`);

      // A reload re-plans: slots of 3 s from then on.
      ws.writeAgentConfig(agentConfig(repoDir, '3s'));
      try {
        d.signal('SIGHUP');
        await d.waitLog('automatic restore points every 3s (on the primary spider node)', 60_000);
        const replanned = d.lines.findIndex((l) => l.msg.startsWith('automatic restore points every 3s'));
        // The first may be the one taken when the reload came (one at a time: at most one).
        const taken = () => d.lines.slice(replanned + 1).filter((l) => /^automatic restore point auto-\S+ at /.test(l.msg));
        await waitFor('two points after the reload', () => taken().length >= 2, 60_000);
        const next = taken()[1]!;
        assert.equal(Number(next.msg.split(' ')[3]?.slice(-2)) % 3, 0, next.msg);
      } finally {
        ws.writeAgentConfig(agentConfig(repoDir));
      }
    } finally {
      await stopDaemon(d);
    }
    await cluster.waitReplicated();
  });

  test('expire: automatic points older than the oldest kept backup and the binlogs it no longer needs go; a dry run deletes nothing', async () => {
    // The task table's CreatedAt has whole seconds: a point in the second the backup is created
    // cannot be told to be before it, and is kept (with the binlogs it may need).
    await new Promise((r) => setTimeout(r, 1100));
    // The files closed now hold only what came before the next backup.
    for (const m of cluster.masters) await cluster.exec(m, 'FLUSH BINARY LOGS');
    await backup('ap-b2');
    // Written after the backup, then closed: the file holding its position.
    await cluster.exec(cluster.spider, 'UPDATE bank.acct SET balance = balance WHERE id < 10');
    for (const m of cluster.masters) await cluster.exec(m, 'FLUSH BINARY LOGS');

    // Points after the kept backup.
    const before = new Set(await autoNames());
    const d = startDaemon();
    await d.ready();
    await waitFor('2 points after the second backup', async () => (await autoNames()).filter((n) => !before.has(n)).length >= 2, 120_000);
    await stopDaemon(d);
    const all = await autoNames();
    const old = all.filter((n) => before.has(n));
    const fresh = all.filter((n) => !before.has(n));
    assert.ok(afterB1.every((n) => old.includes(n)));

    // A small archive of each master's closed binlog files, as the archiver would store them.
    const repo = (await configuredRepository(loadAgentConfig(ws.agentIni))) as Repository;
    const expected: { gone: string[]; stay: string[] } = { gone: [], stay: [] };
    const scratch = mkdtempSync(join(tmpdir(), 'sb-binlogs-'));
    try {
      for (const m of cluster.masters) {
        const manifest = JSON.parse(
          readFileSync(join(repoDir, PREFIX, 'backups', 'ap-b2', `${m.host}_${m.port}`, 'manifest.json'), 'utf8'),
        ) as { position: { binlogFile: string } };
        const startFile = manifest.position.binlogFile;
        const logs = await cluster.query<{ Log_name: string }>(m, 'SHOW BINARY LOGS');
        const closed = logs.slice(0, -1).map((l) => l.Log_name);
        const [{ id }] = (await cluster.query<{ id: number }>(m, 'SELECT @@server_id AS id')) as [{ id: number }];
        const paths = await fetchBinlogs({ host: m.host, port: m.port, user: ADMIN_USER, password: ADMIN_PASSWORD }, closed, scratch);
        for (const [i, path] of paths.entries()) {
          const bytes = readFileSync(path);
          const scanner = new BinlogScanner();
          scanner.push(bytes);
          assert.equal(scanner.state.end, bytes.length, path);
          assert.ok(scanner.state.closed, `${path} ends in a Rotate`);
          const index: FileIndex = {
            format: ARCHIVE_FORMAT,
            shard: m.shardValue,
            host: m.host,
            port: m.port,
            serverId: id,
            file: closed[i] as string,
            fileStart: scanner.state.fileStart ?? '',
            closed: false,
            segments: [],
          };
          await storeSegment(repo, index, bytes, scanner.takeRange(), true);
          const folder = fileFolderKey(repo, index);
          (Number(closed[i]?.split('.')[1]) < Number(startFile.split('.')[1]) ? expected.gone : expected.stay).push(folder);
        }
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    assert.ok(expected.gone.length >= 2 && expected.stay.length >= 2, JSON.stringify(expected));

    const listed = await ws.cli('restore-point', '--list', '-c', spiderIni);
    const backups = await ws.cli('list', '-c', spiderIni);
    process.stdout.write(`# points before expire (old: ${old.join(' ')}):\n${listed.stdout}${backups.stdout}`);
    const snapshot = filesBelow(repoDir);
    const dry = await ws.cli('expire', '--keep', '1', '-c', spiderIni);
    assert.equal(dry.code, 0, `${dry.stdout}\n${dry.stderr}`);
    process.stdout.write(`# expire (dry run):\n${dry.stdout}`);
    assert.match(dry.stdout, /would delete 1 backup\(s\)/);
    assert.match(dry.stdout, new RegExp(`would delete ${old.length} automatic restore point\\(s\\) older than the oldest kept backup`));
    assert.match(dry.stdout, new RegExp(`would delete ${expected.gone.length} archived binlog file\\(s\\)`));
    assert.deepEqual(filesBelow(repoDir), snapshot, 'a dry run deletes nothing');
    for (const m of cluster.masters) assert.deepEqual(await rowsOn(m), all.sort());

    const run = await ws.cli('expire', '--keep', '1', '--confirm', '-c', spiderIni);
    process.stdout.write(`# expire --confirm:\n${run.stdout}${run.stderr}`);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /deleted 1 backup\(s\)/);
    assert.match(run.stdout, new RegExp(`deleted ${expected.gone.length} archived binlog file\\(s\\)`));
    // Rows on every shard master and the objects: the old points gone, the new ones there.
    for (const m of cluster.masters) assert.deepEqual(await rowsOn(m), fresh.sort(), m.name);
    assert.deepEqual((await autoNames()).sort(), fresh.sort());
    for (const n of old) assert.ok(!existsSync(pointFile(n)), n);
    for (const n of fresh) assert.ok(existsSync(pointFile(n)), n);
    for (const f of expected.gone) assert.deepEqual(filesBelow(join(repoDir, f)), [], `${f} removed`);
    for (const f of expected.stay) {
      assert.ok(existsSync(join(repoDir, f, INDEX_OBJECT)), `${f} kept`);
      assert.ok(
        readdirSync(join(repoDir, f)).some((n) => n.endsWith('.zst')),
        `${f} keeps its segment`,
      );
    }
    assert.ok(existsSync(join(repoDir, PREFIX, 'backups', 'ap-b2')));
    assert.ok(!existsSync(join(repoDir, PREFIX, 'backups', 'ap-b1')));
  });
});
