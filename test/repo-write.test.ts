// Backups written into the repository ([repository], issue 18) against a real cluster and a real
// posix repository (a temp directory): the built-in runners stream into it and leave BackupDir
// empty, each instance's manifest is written last and matches the stored bytes; a backup killed
// mid-upload leaves no manifest and the next backup of the instance clears what it left; a
// repository that cannot be written fails the task by the store's name, in the log, `logs` and
// `status`; `runner = command` has the files its command created uploaded with a manifest.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import mysql from 'mysql2/promise';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { DaemonProcess } from './support/daemon.js';
import { readStatus } from '../src/state/daemon-status.js';
import { insertTasks, statusOf } from './support/tasks.js';
import { waitFor } from './support/workspace.js';

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let m0: Instance;
let backupDir: string;
let repoDir: string;
const PREFIX = 'c1';

before(async () => {
  cluster = await setUpCluster({
    shards: 2,
    slaves: [0],
    workspaces: { ws: { serves: ['spider0', 'master0', 'master1', 'slave0'] } },
  });
  ({ ws } = cluster.workspaces);
  m0 = cluster.masters[0] as Instance;
  backupDir = join(ws.confDir, 'dbbak');
  repoDir = mkdtempSync(join(tmpdir(), 'sb-repo-'));
  for (const m of cluster.masters) {
    await cluster.exec(m, 'CREATE DATABASE shop');
    await cluster.exec(m, 'CREATE TABLE shop.orders (id int PRIMARY KEY, item varchar(40), note blob)');
    for (let i = 0; i < 20; i++)
      await cluster.exec(m, 'INSERT INTO shop.orders VALUES (?, ?, ?)', [i, `item-${m.shardValue}-${i}`, Buffer.from([0, i, 255])]);
  }
  await cluster.waitReplicated();
});

after(async () => {
  await cluster?.close();
  if (repoDir) rmSync(repoDir, { recursive: true, force: true });
});

const repository = (extra: Record<string, string> = {}) => ({ type: 'posix', path: repoDir, prefix: PREFIX, ...extra });
const keyDir = (id: string, inst: Instance) => join(repoDir, PREFIX, 'backups', id, `${inst.host}_${inst.port}`);
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Every file below `dir`, relative ('.partial' ones included). */
function filesBelow(dir: string, base = dir): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesBelow(join(dir, e.name), base) : [relative(base, join(dir, e.name))]))
    .sort();
}

/** The manifest of one instance's backup in the repository; every object it lists has its size and sha256. */
function checkedManifest(id: string, inst: Instance): { files: { name: string; bytes: number; sha256: string }[]; [k: string]: unknown } {
  const dir = keyDir(id, inst);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  assert.equal(manifest.backupId, id);
  assert.equal(manifest.port, inst.port);
  assert.ok(manifest.files.length > 0, `${inst.name}: files listed`);
  for (const f of manifest.files) {
    assert.equal(statSync(join(dir, f.name)).size, f.bytes, `${inst.name}: ${f.name} size`);
    assert.equal(sha256(join(dir, f.name)), f.sha256, `${inst.name}: ${f.name} sha256`);
  }
  return manifest;
}

/** A global backup's rows, as `schedule` writes them (no tdbctl here: the test's ports stay in its range), then run. */
async function scheduleAndRun(id: string): Promise<string> {
  await insertTasks(
    cluster,
    [cluster.spider, ...cluster.masters, ...cluster.slaves].map((inst) => ({ backupId: id, for: inst })),
  );
  const r = await ws.cli('check', '--run');
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  return `${r.stdout}\n${r.stderr}`;
}

/** The bytes of the supervisor's `backup finished` line for `inst` in a CLI's output (its JSON log lines). */
function finishedBytes(output: string, inst: Instance): number | undefined {
  for (const l of output.split('\n')) {
    if (!l.includes('"backup finished"')) continue;
    const line = JSON.parse(l) as { port: number; bytes?: number };
    if (line.port === inst.port) return line.bytes;
  }
  return undefined;
}

/** One task for m0, run by `check --run -c` its drop-in. */
async function runOnM0(id: string) {
  await insertTasks(cluster, [{ backupId: id, for: m0 }]);
  return ws.cli('check', '--run', '-c', ws.dropIn(m0));
}

for (const tool of ['mariadb-dump', 'mariadb-backup'] as const) {
  test(
    `a global backup with ${tool} goes into the repository: BackupDir empty, manifests match the objects`,
    { timeout: 240_000 },
    async () => {
      ws.writeAgentConfig({ backup: { runner: tool }, repository: repository() });
      const id = `rw-${tool}`;
      const out = await scheduleAndRun(id);
      for (const inst of [cluster.spider, ...cluster.masters, ...cluster.slaves]) {
        assert.equal(await statusOf(cluster, inst, id), 'success', inst.name);
        const manifest = checkedManifest(id, inst);
        assert.deepEqual(
          manifest.files.map((f) => f.name),
          [tool === 'mariadb-dump' ? 'dump.sql.zst' : 'backup.xbstream.zst'],
        );
        assert.equal((manifest.tool as { name: string }).name, tool);
        // The verdict row says where the backup is.
        const [row] = (await cluster.query(
          inst,
          'SELECT Dir, Verdict FROM infodba_schema.spiderbackup_manifest WHERE BackupId = ? AND Port = ?',
          [id, inst.port],
        )) as {
          Dir: string;
          Verdict: string;
        }[];
        assert.equal(row?.Verdict, 'ok', inst.name);
        assert.equal(row?.Dir, `posix ${repoDir}:${PREFIX}/backups/${id}/${inst.host}_${inst.port}/`);
      }
      // The supervisor counted the bytes uploaded (its last measurement is the backup's size).
      const m0Manifest = JSON.parse(readFileSync(join(keyDir(id, m0), 'manifest.json'), 'utf8')) as { bytes: number };
      assert.equal(finishedBytes(out, m0), m0Manifest.bytes);
      assert.deepEqual(filesBelow(backupDir), [], 'nothing staged in BackupDir');
      assert.deepEqual(
        filesBelow(repoDir).filter((f) => f.endsWith('.partial')),
        [],
      );
    },
  );
}

test(
  'with an encryption key the stored objects are ciphertext, and the manifest has their sha256 and the key id',
  { timeout: 120_000 },
  async () => {
    const keyFile = join(ws.dir, 'repo.key');
    writeFileSync(keyFile, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
    ws.writeAgentConfig({ backup: { runner: 'mariadb-dump' }, repository: repository({ encryption_key_file: keyFile }) });
    const id = 'rw-encrypted';
    const r = await runOnM0(id);
    assert.equal(await statusOf(cluster, m0, id), 'success', `${r.stdout}\n${r.stderr}`);
    const manifest = checkedManifest(id, m0) as { encryption?: { keyId: string }; files: { name: string }[] };
    assert.match(manifest.encryption?.keyId ?? '', /^[0-9a-f]{16}$/);
    const stored = readFileSync(join(keyDir(id, m0), manifest.files[0]?.name ?? ''));
    assert.equal(stored.subarray(0, 7).toString('latin1'), 'SPBKENC', 'the object is encrypted');

    // A key file that cannot be read fails the next backup by its name.
    const gone = join(ws.dir, 'missing.key');
    ws.writeAgentConfig({ backup: { runner: 'mariadb-dump' }, repository: repository({ encryption_key_file: gone }) });
    const bad = await runOnM0('rw-no-key');
    assert.equal(await statusOf(cluster, m0, 'rw-no-key'), 'failed: upload to posix store');
    assert.match(`${bad.stdout}${bad.stderr}`, new RegExp(`${gone}`));
    assert.deepEqual(filesBelow(keyDir('rw-no-key', m0)), []);
  },
);

test('the same backup id is never written twice into the repository', { timeout: 120_000 }, async () => {
  ws.writeAgentConfig({ backup: { runner: 'mariadb-dump' }, repository: repository() });
  const id = 'rw-mariadb-dump';
  const before = readFileSync(join(keyDir(id, m0), 'manifest.json'), 'utf8');
  await cluster.exec(m0, 'DELETE FROM infodba_schema.global_backup WHERE BackupId = ? AND Port = ?', [id, m0.port]);
  const r = await runOnM0(id);
  assert.match((await statusOf(cluster, m0, id)) ?? '', /^failed: upload to posix store/, r.stderr);
  assert.match(`${r.stdout}${r.stderr}`, /already holds a complete backup; not overwritten/);
  assert.equal(readFileSync(join(keyDir(id, m0), 'manifest.json'), 'utf8'), before);
});

/** Pids of every process carrying the backup's task marker (the runner and its tool). */
function backupPids(id: string): number[] {
  const found: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${e}/stat`, 'utf8'))) continue;
      if (readFileSync(`/proc/${e}/environ`, 'utf8').includes(`SPIDERBACKUP_TASK=["${id}"`)) found.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('a backup killed mid-upload', () => {
  let locker: mysql.Connection;
  before(async () => {
    ws.writeAgentConfig({ backup: { runner: 'mariadb-dump', kill_grace: '10s' }, repository: repository() });
    // mariadb-dump's FLUSH TABLES WITH READ LOCK waits for this write lock: the upload has begun
    // (its object is open in the repository) and goes no further until the lock goes.
    locker = await mysql.createConnection({ socketPath: m0.socket, user: 'root' });
    await locker.query('LOCK TABLES shop.orders WRITE');
  });
  after(async () => {
    await locker?.query('UNLOCK TABLES').catch(() => undefined);
    await locker?.end().catch(() => undefined);
  });

  /** Starts m0's backup of `id` and waits until its upload has begun (its object open in the repository, the tool blocked). */
  async function startBlocked(id: string) {
    await insertTasks(cluster, [{ backupId: id, for: m0 }]);
    const run = ws.start(['check', '--run', '-c', ws.dropIn(m0)]);
    await waitFor('the upload to begin', async () => {
      if (run.child.exitCode !== null) assert.fail(`check --run ended: ${run.stdout()}\n${run.stderr()}`);
      return existsSync(join(keyDir(id, m0), 'dump.sql.zst.partial')) && backupPids(id).length >= 2;
    });
    const rows = (await cluster.query(m0, 'SELECT TaskPid FROM infodba_schema.global_backup WHERE BackupId = ?', [id])) as {
      TaskPid: number;
    }[];
    const supervisor = Number(rows[0]?.TaskPid);
    assert.ok(supervisor > 0);
    return { run, supervisor };
  }

  test(
    'kill -9 of the supervisor mid-upload: the agent stops the runner; no manifest, nothing left, failed',
    { timeout: 180_000 },
    async () => {
      const id = 'rw-orphan';
      const { run, supervisor } = await startBlocked(id);
      process.kill(supervisor, 'SIGKILL');
      await run.result;
      const again = await ws.cli('check', '--run', '-c', ws.dropIn(m0));
      assert.equal(again.code, 0, again.stderr);
      assert.equal(await statusOf(cluster, m0, id), 'failed: supervisor died');
      await waitFor('the runner to be gone', () => backupPids(id).length === 0 || undefined);
      assert.ok(!existsSync(join(keyDir(id, m0), 'manifest.json')), 'no manifest: never complete');
      assert.deepEqual(filesBelow(keyDir(id, m0)), [], 'the runner removed its partial object when it was stopped');
    },
  );

  test(
    'kill -9 of the supervisor and its backup: no manifest, failed; the next backup clears the leftovers',
    { timeout: 180_000 },
    async () => {
      const id = 'rw-killed';
      const { run, supervisor } = await startBlocked(id);
      // As a power cut would: nothing of the backup gets to clean up after itself.
      for (const pid of [supervisor, ...backupPids(id)]) process.kill(pid, 'SIGKILL');
      await run.result;
      await locker.query('UNLOCK TABLES');
      const after = await ws.cli('check', '--run', '-c', ws.dropIn(m0));
      assert.equal(after.code, 0, after.stderr);
      assert.match((await statusOf(cluster, m0, id)) ?? '', /^failed/);
      assert.ok(!existsSync(join(keyDir(id, m0), 'manifest.json')), 'no manifest: never complete');
      assert.deepEqual(filesBelow(keyDir(id, m0)), ['dump.sql.zst.partial'], 'the killed upload left its partial object');

      const next = await runOnM0('rw-after-kill');
      assert.equal(await statusOf(cluster, m0, 'rw-after-kill'), 'success', `${next.stdout}\n${next.stderr}`);
      checkedManifest('rw-after-kill', m0);
      assert.deepEqual(filesBelow(keyDir(id, m0)), [], 'the next backup of the instance removed the leftovers');
      assert.match(next.stderr + next.stdout, /removed what earlier attempts left in the repository/);
    },
  );
});

describe('a repository that cannot be written', () => {
  const missing = () => join(repoDir, 'not-mounted');
  const logFile = () => join(ws.dir, 'agent.log');
  let daemon: DaemonProcess | undefined;
  after(() => daemon?.dispose());

  test('fails the task naming the store, in the log, `logs --backup-id` and `status`', { timeout: 180_000 }, async () => {
    ws.writeAgentConfig({ backup: { runner: 'mariadb-dump' }, repository: repository({ path: missing() }), log: { file: logFile() } });
    const id = 'rw-no-repo';
    const r = await runOnM0(id);
    assert.equal(await statusOf(cluster, m0, id), 'failed: upload to posix store', `${r.stdout}\n${r.stderr}`);
    const failed = readFileSync(logFile(), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"backup failed"'))
      .map((l) => JSON.parse(l) as { backupId: string; stderrTail?: string; repositoryError?: string })
      .find((l) => l.backupId === id);
    assert.ok(failed, 'the supervisor logged the failure');
    assert.match(failed.repositoryError ?? '', new RegExp(`posix ${missing()}: cannot use ${missing()}: ENOENT`));
    const logs = await ws.cli('logs', '--backup-id', id);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, new RegExp(`posix ${missing()}: cannot use`));
    assert.deepEqual(filesBelow(backupDir), [], 'nothing staged in BackupDir');
    assert.ok(!existsSync(missing()), 'the missing mount point is not created');

    daemon = new DaemonProcess(ws);
    await daemon.ready();
    const status = await waitFor('status to show the repository', async () => {
      const s = await ws.cli('status', '--format', 'json');
      const v = JSON.parse(s.stdout) as { repository: string | null; lastError: { message: string } | null };
      return v.repository !== null ? v : undefined;
    });
    assert.match(status.repository ?? '', new RegExp(`^posix ${missing()}, prefix ${PREFIX}: .*cannot use ${missing()}`));
    assert.match(status.lastError?.message ?? '', /repository: .*cannot use/);
    const text = await ws.cli('status');
    assert.match(text.stdout, new RegExp(`Repository: +posix ${missing()}, prefix ${PREFIX}: `));
    assert.ok(daemon.child.exitCode === null, 'the daemon goes on');

    // A backup the daemon runs fails the same way, and its failure becomes the last error.
    const id2 = 'rw-no-repo-daemon';
    await insertTasks(cluster, [{ backupId: id2, for: m0 }]);
    await waitFor(
      'the daemon to run and fail the backup',
      async () => /^failed/.test((await statusOf(cluster, m0, id2)) ?? '') || undefined,
      60_000,
    );
    assert.equal(await statusOf(cluster, m0, id2), 'failed: upload to posix store');
    // Read from status.json as the daemon writes it (what `status` shows, checked above) every
    // 50 ms: an error noted soon after (the repository re-check the failure sets off) replaces it,
    // and a look through a CLI child, a second or more apart, could miss the moment it was last.
    const last = await waitFor(
      'the failure to be the last error',
      () => {
        const message = readStatus(ws.stateDir)?.lastError?.message;
        return message?.includes(id2) ? message : undefined;
      },
      60_000,
    );
    assert.match(last, new RegExp(`backup ${id2} on port ${m0.port}: failed: upload to posix store: posix ${missing()}: cannot use`));
    assert.ok(daemon.child.exitCode === null, 'the daemon goes on');

    // Once the repository is there, status says so (on reload).
    mkdirSync(missing());
    daemon.signal('SIGHUP');
    await waitFor('status to show the repository ok', async () => {
      const s = await ws.cli('status', '--format', 'json');
      return (JSON.parse(s.stdout) as { repository: string | null }).repository === `posix ${missing()}, prefix ${PREFIX}: ok` || undefined;
    });
    await daemon.dispose();
    daemon = undefined;
    assert.ok(readFileSync(logFile(), 'utf8').includes('the repository cannot be used'));
  });
});

describe('runner = command', () => {
  test('the files the backup command created are uploaded with a manifest; older files are not', { timeout: 120_000 }, async () => {
    // A stand-in for dbbackup: writes two files of this backup under BackupDir.
    const script = join(ws.dir, 'dbbackup-stand-in.sh');
    writeFileSync(
      script,
      '#!/bin/sh\nset -e\nmkdir -p "$1/$2"\nhead -c 300000 /dev/urandom > "$1/$2/data_$3.tar"\nprintf "index of %s\\n" "$2" > "$1/$2/$3.index"\n',
    );
    chmodSync(script, 0o755);
    const old = join(backupDir, 'older', 'old.tar');
    mkdirSync(join(backupDir, 'older'), { recursive: true });
    writeFileSync(old, 'an older backup');
    utimesSync(old, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    ws.writeAgentConfig({
      backup: { runner: 'command', remote_command: `${script} ${backupDir} {backup_id} {port}` },
      repository: repository(),
    });
    const id = 'rw-command';
    const r = await runOnM0(id);
    assert.equal(await statusOf(cluster, m0, id), 'success', `${r.stdout}\n${r.stderr}`);
    const manifest = checkedManifest(id, m0);
    assert.deepEqual(
      manifest.files.map((f) => f.name),
      [`${id}/${m0.port}.index`, `${id}/data_${m0.port}.tar`],
    );
    assert.equal(manifest.bytes, 300000 + `index of ${id}\n`.length);
    assert.equal(finishedBytes(`${r.stdout}\n${r.stderr}`, m0), manifest.bytes, 'the bytes counted are the ones uploaded');
    assert.equal(sha256(join(keyDir(id, m0), `${id}/data_${m0.port}.tar`)), sha256(join(backupDir, id, `data_${m0.port}.tar`)));
    const [row] = (await cluster.query(
      m0,
      'SELECT Dir, Verdict FROM infodba_schema.spiderbackup_manifest WHERE BackupId = ? AND Port = ?',
      [id, m0.port],
    )) as {
      Dir: string;
      Verdict: string;
    }[];
    assert.equal(row?.Verdict, 'ok');
    assert.equal(row?.Dir, `posix ${repoDir}:${PREFIX}/backups/${id}/${m0.host}_${m0.port}/`);
  });

  test('a repository that cannot be written fails the task before the command runs', { timeout: 120_000 }, async () => {
    const script = join(ws.dir, 'dbbackup-stand-in.sh');
    ws.writeAgentConfig({
      backup: { runner: 'command', remote_command: `${script} ${backupDir} {backup_id} {port}` },
      repository: repository({ path: join(repoDir, 'not-there') }),
    });
    const id = 'rw-command-no-repo';
    const r = await runOnM0(id);
    assert.equal(await statusOf(cluster, m0, id), 'failed: upload to posix store', `${r.stdout}\n${r.stderr}`);
    assert.match(`${r.stdout}${r.stderr}`, /the repository cannot take the backup; backup not started/);
    assert.ok(!existsSync(join(backupDir, id)), 'the command did not run');
  });
});
