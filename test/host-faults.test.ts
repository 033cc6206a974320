// Host-side fault attacks (issue 17 item 9) on a real cluster: a task row's backup id that names a
// path, a tampered manifest, signals at start, a deleted daemon lock, control characters in rows,
// 10,000 waiting tasks, a full BackupDir, a step of the database clock and a damaged pause file.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { insertTasks, statusOf } from './support/tasks.js';
import { DaemonProcess } from './support/daemon.js';
import { hostPaths } from '../src/host/protocol.js';
import { readLockHolder } from '../src/state/daemon-lock-holder.js';

const RUNNER = fileURLToPath(new URL('../src/bin/runner.js', import.meta.url));

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let m0: Instance;
let ini: string;
let spiderIni: string;

before(async () => {
  cluster = await setUpCluster({
    shards: 1,
    slaves: [],
    tdbctl: true,
    workspaces: { ws: { serves: ['master0', 'spider0'], config: { backup: { runner: 'mariadb-dump' } } } },
  });
  ({ ws } = cluster.workspaces);
  m0 = cluster.masters[0] as Instance;
  ini = ws.dropIn(m0);
  spiderIni = ws.dropIn(cluster.spider);
});

after(() => cluster?.close());

beforeEach(() => cluster.reset());

describe('a backup id that names a path', () => {
  // BackupDir is <ws>/conf.d/dbbak: this id leads to <ws>/victim.
  const id = '../../victim';

  function victim(): string {
    const dir = join(ws.dir, 'victim', `${m0.host}_${m0.port}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'keep.txt'), 'not the runner’s to delete');
    return dir;
  }

  test(
    'the agent never runs it: the task ends `failed: invalid backup id`, nothing outside BackupDir is touched',
    { timeout: 120_000 },
    async () => {
      const dir = victim();
      await insertTasks(cluster, [{ backupId: id, for: m0 }]);
      const r = await ws.cli('check', '--run');
      assert.equal(await statusOf(cluster, m0, id), 'failed: invalid backup id', `${r.stdout}\n${r.stderr}`);
      assert.ok(existsSync(join(dir, 'keep.txt')), 'the directory outside BackupDir was deleted');
      assert.deepEqual(readdirSync(join(ws.dir, 'victim')).sort(), [`${m0.host}_${m0.port}`], 'something was written outside BackupDir');
    },
  );

  test('the runner refuses it whoever starts it', { timeout: 60_000 }, () => {
    const dir = victim();
    const args = [`--tool=mariadb-dump`, `--backup-id=${id}`, `--host=${m0.host}`, `--port=${m0.port}`, '--shard-value=0', '--role=master'];
    const r = spawnSync(process.execPath, [RUNNER, 'spiderbackup-runner', ...args, `--instance=${ini}`], {
      encoding: 'utf8',
      timeout: 50_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /invalid backup id/);
    assert.ok(existsSync(join(dir, 'keep.txt')));
    assert.deepEqual(readdirSync(join(ws.dir, 'victim')), [`${m0.host}_${m0.port}`]);
  });
});

describe('verify and a tampered backup', () => {
  const id = 'vt-1';
  const dirOf = (inst: Instance) => join(ws.confDir, 'dbbak', id, `${inst.host}_${inst.port}`);

  test(
    'a manifest entry or a published directory outside the backup directory is a failure, never a stat',
    { timeout: 180_000 },
    async () => {
      const s = await ws.cli('schedule', '-c', spiderIni, `--backup-id=${id}`);
      assert.equal(s.code, 0, s.stderr);
      const r = await ws.cli('check', '--run');
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.equal((await ws.cli('verify', id)).code, 0);

      const manifestFile = join(dirOf(m0), 'manifest.json');
      const good = readFileSync(manifestFile, 'utf8');
      const tampered = JSON.parse(good);
      const entry = '../../../../../../../../../../etc/hostname';
      tampered.files = [{ name: entry, bytes: 1, sha256: '0'.repeat(64) }];
      writeFileSync(manifestFile, JSON.stringify(tampered));
      const v = await ws.cli('verify', id);
      assert.equal(v.code, 1, v.stdout);
      assert.match(v.stdout, new RegExp(`^FAIL +SPT0 .*manifest.json: entry "${entry.replace(/\./g, '\\.')}" names a file outside`, 'm'));
      assert.doesNotMatch(v.stdout, /etc\/hostname: \d+ bytes/, "the named file was stat'ed");
      writeFileSync(manifestFile, good);

      // The published row names another directory holding a manifest: it is not looked at.
      const elsewhere = join(ws.dir, 'elsewhere');
      mkdirSync(elsewhere, { recursive: true });
      for (const f of readdirSync(dirOf(m0))) copyFileSync(join(dirOf(m0), f), join(elsewhere, f));
      await cluster.exec(m0, 'UPDATE infodba_schema.spiderbackup_manifest SET Dir = ? WHERE BackupId = ?', [elsewhere, id]);
      const moved = await ws.cli('verify', id);
      assert.equal(moved.code, 1, moved.stdout);
      assert.match(moved.stdout, /^FAIL +SPT0 .*published directory ".*elsewhere" is not <BackupDir>\/vt-1\//m);
      await cluster.exec(m0, 'UPDATE infodba_schema.spiderbackup_manifest SET Dir = ? WHERE BackupId = ?', [dirOf(m0), id]);
      assert.equal((await ws.cli('verify', id)).code, 0);
    },
  );
});

/** Whether `pid` has a handler for signal number `n` (SigCgt of /proc/<pid>/status); undefined once gone. */
function catches(pid: number, n: number): boolean | undefined {
  try {
    const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? ((BigInt(`0x${m[1]}`) >> BigInt(n - 1)) & 1n) === 1n : undefined;
  } catch {
    return undefined;
  }
}

describe('signals at start', () => {
  test('SIGHUP and SIGUSR2 while the daemon is still loading: it survives, replays them and serves', { timeout: 120_000 }, async () => {
    const d = new DaemonProcess(ws);
    try {
      const lockFile = hostPaths(ws.hostLock).daemonLock;
      // A tight synchronous poll: the first moment SIGHUP has a handler (SIGHUP is 1, SIGUSR2 12).
      const deadline = Date.now() + 30_000;
      let caught: boolean | undefined = false;
      while (caught === false && Date.now() < deadline) caught = catches(d.pid, 1);
      assert.equal(caught, true, `the daemon never caught SIGHUP (or died): ${d.stderr}`);
      const lockedFirst = readLockHolder(lockFile)?.pid === d.pid;
      assert.equal(catches(d.pid, 12), true, 'SIGUSR2 is not held together with SIGHUP');
      d.signal('SIGHUP');
      d.signal('SIGUSR2');
      // Before anything slow: the daemon has not even taken its lock when the handlers exist.
      assert.equal(lockedFirst, false, 'SIGHUP was only handled once the daemon had started (taken its lock)');
      await d.ready();
      await d.waitLog('configuration reloaded (SIGHUP)');
      await d.waitLog('log file reopened (SIGUSR2)');
      await d.nextTicks(2);
      assert.equal(d.child.exitCode, null);
      assert.equal(d.child.signalCode, null);
    } finally {
      d.signal('SIGTERM');
      await d.exited;
      await d.dispose();
    }
  });
});

describe('the daemon lock', () => {
  test('its file deleted, a second daemon starts: the first steps down (exit 1), only one serves', { timeout: 180_000 }, async () => {
    const d1 = new DaemonProcess(ws);
    let d2: DaemonProcess | undefined;
    try {
      await d1.ready();
      rmSync(hostPaths(ws.hostLock).daemonLock);
      d2 = new DaemonProcess(ws);
      const first = await Promise.race([d1.exited, new Promise((r) => setTimeout(() => r('still running after 60 s'), 60_000).unref())]);
      assert.deepEqual(first, { code: 1, signal: null }, 'the first daemon did not step down');
      assert.ok(d1.log(/daemon lock lost/), 'no log line says why');
      await d2.ready();
      await d2.nextTicks(2);
      assert.equal(d2.child.exitCode, null, d2.stderr);
    } finally {
      for (const d of [d1, d2]) {
        d?.signal('SIGTERM');
        await d?.dispose();
      }
    }
  });
});

describe('control characters in rows', () => {
  test('query and list show them escaped, JSON keeps them as JSON', { timeout: 120_000 }, async () => {
    const forged = 'failed\x1b[2K\rsuccess';
    await insertTasks(cluster, [{ backupId: 'cc-1', for: m0, serverName: 'SPT0\nFORGED line', status: forged }]);
    const q = await ws.cli('query', '-c', spiderIni, '--BackupId', 'cc-1');
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, /failed\\x1b\[2K\\rsuccess/);
    assert.match(q.stdout, /SPT0\\nFORGED line/);
    assert.ok(!q.stdout.includes('\x1b') && !q.stdout.includes('\r'), q.stdout);
    assert.ok(!q.stdout.split('\n').some((l) => l.startsWith('FORGED')), q.stdout);
    const json = await ws.cli('query', '-c', spiderIni, '--BackupId', 'cc-1', '--format', 'json');
    assert.equal(JSON.parse(json.stdout)[0].BackupStatus, forged);
    const l = await ws.cli('list', '-c', spiderIni);
    assert.ok(!l.stdout.includes('\x1b') && !l.stdout.includes('\r'), l.stdout);
    assert.ok(!l.stdout.split('\n').some((x) => x.startsWith('FORGED')), l.stdout);
  });
});

describe('10,000 waiting tasks', () => {
  test('status shows a count and the first few; the tick reads a bounded page', { timeout: 240_000 }, async () => {
    await cluster.exec(
      m0,
      `INSERT INTO infodba_schema.global_backup (ServerName, Wrapper, Host, Port, ShardValue, BackupId, BackupStatus, TaskPid, CreatedAt)
       SELECT 'SPT0', 'mysql', ?, ?, 0, CONCAT('w-', LPAD(seq, 5, '0')), 'init', -1, NOW() - INTERVAL seq SECOND FROM mysql.seq_1_to_10000`,
      [m0.host, m0.port],
    );
    const p = await ws.cli('pause', '--for', '1h', '--reason', 'waiting-queue test');
    assert.equal(p.code, 0, p.stderr);
    const d = new DaemonProcess(ws);
    try {
      await d.ready();
      const ticks = await d.nextTicks(3);
      // A diagnostic, not asserted: the tick time with 10,000 waiting rows.
      console.log(`tick durations with 10,000 waiting rows: ${ticks.map((t) => t.durationMs).join(', ')} ms`);
      const t0 = performance.now();
      const st = await ws.cli('status');
      console.log(`status took ${Math.round(performance.now() - t0)} ms, ${st.stdout.split('\n').length} lines`);
      assert.match(st.stdout, /w-10000 init/, st.stdout);
      assert.match(st.stdout, /… and 9995 more waiting/);
      assert.ok(st.stdout.split('\n').length < 60, st.stdout);
      const json = JSON.parse((await ws.cli('status', '--format', 'json')).stdout);
      const inst = json.instances.find((i: { port: number }) => i.port === m0.port);
      assert.equal(inst.current.length, 5);
      assert.equal(inst.moreWaiting, 9995);
    } finally {
      d.signal('SIGTERM');
      await d.exited;
      await d.dispose();
      await ws.cli('resume');
    }
  });
});

describe('a full BackupDir', () => {
  test("the first failing stage is named: zstd out of space, not the dump tool's broken pipe", { timeout: 240_000 }, async () => {
    const mnt = join(ws.dir, 'tiny');
    mkdirSync(mnt);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { encoding: 'utf8' });
    assert.equal(mounted.status, 0, `cannot mount a tmpfs (needs root): ${mounted.stderr}`);
    try {
      await cluster.exec(m0, 'CREATE DATABASE IF NOT EXISTS big');
      await cluster.exec(m0, 'CREATE TABLE IF NOT EXISTS big.blobs (id int PRIMARY KEY, b longblob)');
      // Random bytes do not compress: a dump of several MiB into a 1 MiB file system.
      for (let i = 0; i < 8; i++) await cluster.exec(m0, 'REPLACE INTO big.blobs VALUES (?, RANDOM_BYTES(1024) )', [i]);
      await cluster.exec(m0, "UPDATE big.blobs SET b = (SELECT GROUP_CONCAT(RANDOM_BYTES(1024) SEPARATOR '') FROM mysql.seq_1_to_512)");
      cluster.writeInstanceIni(ws.confDir, m0, { BackupDir: mnt });
      await insertTasks(cluster, [{ backupId: 'full-1', for: m0 }]);
      const r = await ws.cli('check', '--run');
      assert.match((await statusOf(cluster, m0, 'full-1')) ?? '', /^failed/);
      const said = `${r.stdout}\n${r.stderr}`;
      assert.match(said, /backup failed: zstd exited with \d+: [^"]*No space left on device/, said);
    } finally {
      cluster.writeInstanceIni(ws.confDir, m0);
      spawnSync('umount', [mnt]);
      await cluster.exec(m0, 'DROP DATABASE IF EXISTS big');
    }
  });
});
