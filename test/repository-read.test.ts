// Issue 18 items 3, 4 and 7 on a real cluster with a posix repository: a global backup in the
// repository, every host's copy gone; `verify` re-checks it there (also from another host with
// only the agent config) and names the instance and object of one flipped byte; `verify
// --restore-test` (one shard, and every shard to a restore point) fetches from it; `list` shows
// bytes; `repo get` gives the files back byte for byte; `expire` lists, deletes exactly that list,
// keeps the newest complete backup, takes restore points with their base, and refuses under a lock.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import type { Instance } from '../src/sandbox/cluster.js';
import { loadAgentConfig } from '../src/config/agent.js';
import { configuredRepository } from '../src/repo/agent-repository.js';
import { takeLock } from '../src/repo/lock.js';
import type { Repository } from '../src/repo/repository.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { CLI } from './support/workspace.js';
import { DaemonProcess } from './support/daemon.js';
import { startSwift, type Swift } from './support/swift.js';

const run = promisify(execFile);

const PREFIX = 'tc';

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let other: ClusterWorkspace;
let repoDir: string;
let repo: Repository;
let spiderIni: string;
let m1: Instance;
/** The backing host's agent config: the built-in mariadb-dump runner, the posix repository. */
let WS_CONFIG: Record<string, Record<string, string>>;

const instanceDir = (id: string, inst: Instance) => join(repoDir, PREFIX, 'backups', id, `${inst.host}_${inst.port}`);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const manifestOf = (id: string, inst: Instance) =>
  JSON.parse(readFileSync(join(instanceDir(id, inst), 'manifest.json'), 'utf8')) as {
    bytes: number;
    files: { name: string; bytes: number; sha256: string }[];
  };

/** A global backup by the built-in runner, in the repository, the host's copy removed. */
async function backup(id: string, opts: { point?: boolean } = {}): Promise<void> {
  const s = await ws.cli('schedule', '-c', spiderIni, `--backup-id=${id}`, ...(opts.point ? [] : ['--no-restore-point']));
  assert.equal(s.code, 0, s.stderr);
  const r = await ws.cli('check', '--run');
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(
    readdirSync(join(ws.confDir, 'dbbak')).filter((d) => d === id),
    [],
    'the host keeps no copy',
  );
}

before(async () => {
  repoDir = mkdtempSync(join(tmpdir(), 'sb-repo-'));
  const repository = { type: 'posix', path: repoDir, prefix: PREFIX };
  WS_CONFIG = { backup: { runner: 'mariadb-dump' }, repository };
  cluster = await setUpCluster({
    shards: 2,
    slaves: [],
    tdbctl: true,
    config: { repository },
    workspaces: {
      ws: { serves: ['spider0', 'master0', 'master1'], config: { backup: { runner: 'mariadb-dump' } } },
    },
  });
  ({ ws } = cluster.workspaces);
  // Another host: the agent config and nothing else (no drop-in, no backup files).
  other = cluster.workspace({});
  spiderIni = ws.dropIn(cluster.spider);
  m1 = cluster.masters[1] as Instance;
  const r = await configuredRepository(loadAgentConfig(ws.agentIni));
  assert.ok(r);
  repo = r;
  await cluster.exec(cluster.spider, 'CREATE DATABASE IF NOT EXISTS app');
  await cluster.exec(cluster.spider, 'CREATE TABLE IF NOT EXISTS app.t (id int PRIMARY KEY, v varchar(20)) ENGINE=SPIDER');
  for (const m of cluster.masters) {
    await cluster.exec(m, 'CREATE DATABASE IF NOT EXISTS app');
    await cluster.exec(m, 'CREATE TABLE IF NOT EXISTS app.t (id int PRIMARY KEY, v varchar(20))');
    await cluster.exec(m, "INSERT INTO app.t VALUES (1, 'one'), (2, 'two'), (3, ?)", [m.name]);
  }
});

after(async () => {
  await cluster?.close();
  if (repoDir) rmSync(repoDir, { recursive: true, force: true });
});

describe('readers of the repository', { timeout: 600_000 }, () => {
  test('verify re-checks every instance in the repository with the hosts’ copies gone, from any host; a flipped byte is named', async () => {
    await backup('rb1');
    const v = await ws.cli('verify', 'rb1', '-c', spiderIni);
    assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
    assert.equal(v.stdout.match(/^ok .*object\(s\) re-checked in the repository/gm)?.length, 3, v.stdout);
    assert.match(v.stdout, /backup rb1: all 3 instances verified/);

    // From a host that has only the agent config.
    const o = await other.cli('verify', 'rb1', '-c', other.iniFile(cluster.spider));
    assert.equal(o.code, 0, `${o.stdout}\n${o.stderr}`);
    assert.match(o.stdout, /backup rb1: all 3 instances verified/);

    // One flipped byte in one object: that instance and object named, exit 1.
    const name = manifestOf('rb1', m1).files[0]!.name;
    const file = join(instanceDir('rb1', m1), name);
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[Math.floor(bad.length / 2)]! ^= 0x01;
    writeFileSync(file, bad);
    try {
      const f = await ws.cli('verify', 'rb1', '-c', spiderIni);
      assert.equal(f.code, 1, f.stdout);
      assert.match(
        f.stdout,
        new RegExp(
          `^FAIL +SPT1 ${m1.host}:${m1.port} .*backups/rb1/${m1.host}_${m1.port}/${name.replace(/\./g, '\\.')}: sha256 mismatch`,
          'm',
        ),
      );
      assert.match(f.stdout, /backup rb1: 1 of 3 instances FAILED: SPT1 /);
      assert.equal(f.stdout.match(/^ok /gm)?.length, 2);
      // A restore test of that shard refuses it; of the other it fetches and restores.
      const t = await ws.cli('verify', 'rb1', '-c', spiderIni, '--restore-test', '--shard', '1');
      assert.notEqual(t.code, 0);
      assert.match(t.stderr, /SPT1 .* did not verify; not restored/);
    } finally {
      writeFileSync(file, good);
    }
  });

  test('verify --restore-test fetches from the repository', async () => {
    assert.equal(existsSync(join(ws.confDir, 'dbbak', 'rb1')), false);
    const t = await ws.cli('verify', 'rb1', '-c', spiderIni, '--restore-test', '--shard', '1');
    assert.equal(t.code, 0, `${t.stdout}\n${t.stderr}`);
    assert.match(
      t.stdout,
      new RegExp(`restore test SPT1 ${m1.host}:${m1.port} shard 1 \\(mariadb-dump\\): 1 tables, CHECKSUM TABLE equal to the source`),
    );
  });

  test('list shows each backup’s bytes from its manifests in the repository', async () => {
    const r = await ws.cli('list', '-c', spiderIni, '--format', 'json');
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as { backupId: string; state: string; bytes: number }[];
    const row = rows.find((x) => x.backupId === 'rb1');
    const expected = [cluster.spider, ...cluster.masters]
      .map((i) => manifestOf('rb1', i).files.reduce((n, f) => n + f.bytes, 0))
      .reduce((a, b) => a + b, 0);
    assert.equal(row?.bytes, expected);
    const table = await ws.cli('list', '-c', spiderIni);
    assert.match(table.stdout, /Bytes/);
  });

  test('repo get gives one instance’s files back, checked; - streams the data', async () => {
    const out = mkdtempSync(join(tmpdir(), 'sb-get-'));
    try {
      const inst = `${m1.host}_${m1.port}`;
      const g = await ws.cli('repo', 'get', 'rb1', inst, '--out', join(out, 'x'));
      assert.equal(g.code, 0, `${g.stdout}\n${g.stderr}`);
      const m = manifestOf('rb1', m1);
      for (const f of m.files) assert.equal(sha256(readFileSync(join(out, 'x', f.name))), f.sha256);
      assert.ok(existsSync(join(out, 'x', 'manifest.json')));
      // Default: ./<host>_<port>/ of the current directory.
      const d = await ws.cli('repo', 'get', 'rb1', inst);
      assert.equal(d.code, 0, d.stderr);
      for (const f of m.files) assert.equal(sha256(readFileSync(join(ws.dir, inst, f.name))), f.sha256, 'into ./<host>_<port>/');
      // Not overwritten.
      const again = await ws.cli('repo', 'get', 'rb1', inst, '--out', join(out, 'x'));
      assert.equal(again.code, 1);
      assert.match(again.stderr, /exists; not overwritten/);
      // A flipped byte fails naming the object.
      const file = join(instanceDir('rb1', m1), m.files[0]!.name);
      const good = readFileSync(file);
      const bad = Buffer.from(good);
      bad[0]! ^= 0x01;
      writeFileSync(file, bad);
      try {
        const f = await ws.cli('repo', 'get', 'rb1', inst, '--out', join(out, 'y'));
        assert.equal(f.code, 1);
        assert.match(f.stderr, new RegExp(`backups/rb1/${inst}/${m.files[0]!.name.replace(/\./g, '\\.')}: sha256 mismatch`));
        assert.equal(existsSync(join(out, 'y', m.files[0]!.name)), false, 'a file that failed its check is not left behind');
      } finally {
        writeFileSync(file, good);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  test('repo get - writes the one data file to stdout, byte for byte', async () => {
    const m = manifestOf('rb1', m1);
    const stored = readFileSync(join(instanceDir('rb1', m1), m.files[0]!.name));
    const { stdout } = await run(
      process.execPath,
      [CLI, '--agent-config', ws.agentIni, 'repo', 'get', 'rb1', `${m1.host}_${m1.port}`, '-'],
      {
        encoding: 'buffer',
        maxBuffer: 64 * 1024 * 1024,
        timeout: 60_000,
      },
    );
    assert.equal(stdout.length, m.files[0]!.bytes);
    assert.equal(sha256(stdout), sha256(stored));
  });
});

/** Bytes of every file below `dir`. */
function bytesBelow(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size;
  return n;
}

const held = () => readdirSync(join(repoDir, PREFIX, 'backups')).sort();

describe('expire', { timeout: 600_000 }, () => {
  test('a dry run lists what goes; --confirm deletes exactly that, with the restore points based on it; a lock refuses it', async () => {
    await backup('rb2', { point: true });
    const p = await ws.cli('restore-point', 'rb2', '-c', spiderIni);
    assert.equal(p.code, 0, p.stderr);
    const px = await ws.cli('restore-point', 'px', '-c', spiderIni);
    assert.equal(px.code, 0, px.stderr);
    await backup('rbf');
    await cluster.exec(
      cluster.spider,
      "UPDATE infodba_schema.global_backup SET BackupStatus = 'failed' WHERE BackupId = 'rbf' AND Port = ?",
      [m1.port],
    );
    await backup('rb3');
    assert.deepEqual(held(), ['rb1', 'rb2', 'rb3', 'rbf']);
    const sizes = Object.fromEntries(held().map((id) => [id, bytesBelow(join(repoDir, PREFIX, 'backups', id))]));

    const dry = await ws.cli('expire', '--keep', '1', '-c', spiderIni, '--format', 'json');
    assert.equal(dry.code, 0, dry.stderr);
    const listed = JSON.parse(dry.stdout) as { backupId: string; state: string; bytes: number }[];
    assert.deepEqual(
      listed.map((e) => [e.backupId, e.state, e.bytes]).sort(),
      [
        ['rb1', 'complete', sizes.rb1],
        ['rb2', 'complete', sizes.rb2],
        ['rbf', 'failed', sizes.rbf],
      ].sort(),
    );
    assert.deepEqual(held(), ['rb1', 'rb2', 'rb3', 'rbf'], 'a dry run deletes nothing');
    const table = await ws.cli('expire', '--keep', '1', '-c', spiderIni);
    assert.match(
      table.stdout,
      /would delete 3 backup\(s\), .* freed; 1 kept \(newest complete: rb3\); judged by tasks and manifests \(dry run: --confirm deletes them\)/,
    );
    assert.match(table.stdout, /^rb2 +complete +\d+ +\S+ +(rb2 px|px rb2)$/m);

    // A verify holding its lock: a confirmed expire refuses, naming it, and deletes nothing.
    const lock = await takeLock(repo, 'verify');
    try {
      const refused = await ws.cli('expire', '--keep', '1', '--confirm', '-c', spiderIni);
      assert.equal(refused.code, 1, refused.stdout);
      assert.match(refused.stderr, new RegExp(`locked: verify by ${hostname().replace(/\./g, '\\.')} pid ${process.pid} since`));
      assert.deepEqual(held(), ['rb1', 'rb2', 'rb3', 'rbf']);
    } finally {
      await lock.release();
    }

    const done = await ws.cli('expire', '--keep', '1', '--confirm', '-c', spiderIni, '--format', 'json');
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual((JSON.parse(done.stdout) as { backupId: string }[]).map((e) => e.backupId).sort(), ['rb1', 'rb2', 'rbf']);
    assert.deepEqual(held(), ['rb3']);
    const points = await cluster.query<{ Name: string }>(
      cluster.spider,
      'SELECT DISTINCT Name FROM infodba_schema.spiderbackup_restore_point',
    );
    assert.deepEqual(
      points.map((r) => r.Name),
      ['rb3'],
      "the points based on the backups that went (rb2's, px, the others' opt-outs) went with them; rb3's opt-out stays",
    );
    assert.equal((await ws.cli('verify', 'rb3', '-c', spiderIni)).code, 0);
  });

  test('--keep-days 0 keeps the newest complete backup; with the cluster unreachable the manifests alone judge, said so', async () => {
    const r = await ws.cli('expire', '--keep-days', '0', '--confirm', '-c', spiderIni);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deleted 0 backup\(s\), 0 B freed; 1 kept \(newest complete: rb3\)/);
    assert.deepEqual(held(), ['rb3']);
    const o = await other.cli('expire', '--keep-days', '0');
    assert.equal(o.code, 0, o.stderr);
    assert.match(o.stderr, /the cluster could not be read: complete judged by the manifests alone/);
    assert.match(o.stdout, /would delete 0 backup\(s\).*judged by manifests alone/);
    const none = await ws.cli('expire', '-c', spiderIni);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /expire: give --keep and\/or --keep-days, or set \[repository\] retention_keep \/ retention_days/);
  });
});

describe("the spider master's agent expires after each complete backup with retention set", { timeout: 600_000 }, () => {
  let daemon: DaemonProcess | undefined;
  after(async () => {
    await daemon?.dispose();
    ws.writeAgentConfig(WS_CONFIG);
  });

  test('retention_keep = 1: once the backup is complete the older ones go, logged', async () => {
    await backup('rb4');
    assert.deepEqual(held(), ['rb3', 'rb4']);
    ws.writeAgentConfig({
      backup: { runner: 'mariadb-dump' },
      repository: { type: 'posix', path: repoDir, prefix: PREFIX, retention_keep: '1' },
    });
    daemon = new DaemonProcess(ws);
    await daemon.ready();
    const s = await ws.cli('schedule', '-c', spiderIni, '--backup-id=rbd', '--no-restore-point');
    assert.equal(s.code, 0, s.stderr);
    const line = await daemon.waitLog(/^expire: \d+ backup\(s\) deleted from the repository/, 180_000);
    assert.match(line.msg, /rb3/);
    assert.equal(held().includes('rb3'), false);
    assert.equal(held().includes('rb4') || held().includes('rbd'), true, 'the newest complete backup stays');
  });
});

describe('an encrypted repository', { timeout: 600_000 }, () => {
  test('verify --restore-test passes with the key; another key: integrity still verified with a warning, the restore fails naming the key', async () => {
    const keys = mkdtempSync(join(tmpdir(), 'sb-keys-'));
    try {
      const keyA = join(keys, 'a.key');
      const keyB = join(keys, 'b.key');
      writeFileSync(keyA, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
      writeFileSync(keyB, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
      const section = (key?: string) => ({
        repository: { type: 'posix', path: repoDir, prefix: 'enc', ...(key ? { encryption_key_file: key } : {}) },
      });
      const withA = cluster.workspace({ config: section(keyA) });
      const withB = cluster.workspace({ config: section(keyB) });
      const without = cluster.workspace({ config: section() });
      const encRepo = await configuredRepository(loadAgentConfig(withA.agentIni));
      assert.ok(encRepo?.key);
      // The host backs up into the encrypted repository (a runner writing there encrypts itself).
      ws.writeAgentConfig({ backup: { runner: 'mariadb-dump' }, ...section(keyA) });
      try {
        const s = await ws.cli('schedule', '-c', spiderIni, '--backup-id=re1', '--no-restore-point');
        assert.equal(s.code, 0, s.stderr);
        const r = await ws.cli('check', '--run');
        assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      } finally {
        ws.writeAgentConfig(WS_CONFIG);
      }
      // Stored encrypted: not the zstd stream.
      const stored = readFileSync(join(repoDir, 'enc', 'backups', 're1', `${m1.host}_${m1.port}`, 'dump.sql.zst'));
      assert.notEqual(stored.readUInt32LE(0), 0xfd2fb528, 'the object is not zstd in the clear');

      const a = await withA.cli('verify', 're1', '-c', withA.iniFile(cluster.spider), '--restore-test', '--shard', '1');
      assert.equal(a.code, 0, `${a.stdout}\n${a.stderr}`);
      assert.match(a.stdout, /restore test SPT1 .*\(mariadb-dump\): 1 tables, CHECKSUM TABLE equal to the source/);
      assert.doesNotMatch(a.stdout, /warning/);

      for (const [w, why] of [
        [withB, 'its keys: '],
        [without, 'no encryption_key_file set'],
      ] as const) {
        const v = await w.cli('verify', 're1', '-c', w.iniFile(cluster.spider));
        assert.equal(v.code, 0, `integrity is checked without the key: ${v.stdout}\n${v.stderr}`);
        assert.match(v.stdout, new RegExp(`warning: encrypted with key id ${encRepo.key.id}, unknown to this host \\(${why}`));
      }
      const b = await withB.cli('verify', 're1', '-c', withB.iniFile(cluster.spider), '--restore-test', '--shard', '1');
      assert.equal(b.code, 1, b.stdout);
      assert.match(`${b.stdout}\n${b.stderr}`, new RegExp(keyB.replace(/[.]/g, '\\.')));
      process.stdout.write(`# restore test with another key:\n${b.stderr}`);
    } finally {
      rmSync(keys, { recursive: true, force: true });
    }
  });
});

describe('restore-plan and verify --restore-test --to-point from the repository', { timeout: 600_000 }, () => {
  test('every shard fetched from the repository, restored and rolled forward to the point', async () => {
    await backup('rtp');
    for (const m of cluster.masters) await cluster.exec(m, "INSERT INTO app.t VALUES (4, 'four'), (5, 'five'), (6, 'six')");
    const p = await ws.cli('restore-point', 'tpx', '-c', spiderIni);
    assert.equal(p.code, 0, p.stderr);
    const plan = await ws.cli('restore-plan', 'rtp', '--to-point', 'tpx', '-c', spiderIni);
    assert.equal(plan.code, 0, `${plan.stdout}\n${plan.stderr}`);
    for (const m of cluster.masters)
      assert.match(plan.stdout, new RegExp(`from the repository's ${PREFIX}/backups/rtp/${m.host}_${m.port}/ \\(mariadb-dump\\)`));
    const v = await ws.cli(
      'verify',
      'rtp',
      '-c',
      spiderIni,
      '--restore-test',
      '--to-point',
      'tpx',
      '--check-sql',
      'SELECT COUNT(*) FROM app.t',
      '--expect',
      '12',
    );
    assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
    assert.match(v.stdout, /check: SPT0 6, SPT1 6; sum 12, as expected/);

    // An instance's manifest missing from the repository: the plan says so, nothing is restored.
    const manifest = join(instanceDir('rtp', m1), 'manifest.json');
    const text = readFileSync(manifest);
    rmSync(manifest);
    try {
      const gone = await ws.cli('restore-plan', 'rtp', '--to-point', 'tpx', '-c', spiderIni);
      assert.equal(gone.code, 1);
      assert.match(gone.stdout, /PROBLEM: its backup is not complete in the repository: .*manifest\.json missing/);
      const refused = await ws.cli('verify', 'rtp', '-c', spiderIni, '--restore-test', '--to-point', 'tpx');
      assert.equal(refused.code, 1);
      assert.match(refused.stdout, /REFUSED, nothing restored/);
    } finally {
      writeFileSync(manifest, text);
    }
  });
});

describe('a repository in a real object store (Swift s3api)', { timeout: 600_000 }, () => {
  let swift: Swift | undefined;
  const secretDir = mkdtempSync(join(tmpdir(), 'sb-s3-'));
  after(async () => {
    await swift?.close();
    rmSync(secretDir, { recursive: true, force: true });
  });

  test('verify from the bucket with the hosts’ copies gone, a flipped byte named, a restore test, repo get, expire', async () => {
    swift = await startSwift();
    const secret = join(secretDir, 'secret');
    writeFileSync(secret, swift.secret, { mode: 0o600 });
    const s3Section = {
      type: 's3',
      endpoint: swift.endpoint,
      bucket: swift.bucket,
      region: swift.region,
      access_key_id: swift.accessKeyId,
      secret_access_key_file: secret,
      prefix: 's3',
    };
    const s3 = cluster.workspace({ config: { repository: s3Section } });
    const s3Repo = await configuredRepository(loadAgentConfig(s3.agentIni));
    assert.ok(s3Repo);
    ws.writeAgentConfig({ backup: { runner: 'mariadb-dump' }, repository: s3Section });
    try {
      const sch = await ws.cli('schedule', '-c', spiderIni, '--backup-id=rs1', '--no-restore-point');
      assert.equal(sch.code, 0, sch.stderr);
      const r = await ws.cli('check', '--run');
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    } finally {
      ws.writeAgentConfig(WS_CONFIG);
    }
    const spider = s3.iniFile(cluster.spider);

    const v = await s3.cli('verify', 'rs1', '-c', spider);
    assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
    assert.equal(v.stdout.match(/^ok .*object\(s\) re-checked in the repository/gm)?.length, 3, v.stdout);

    const key = `s3/backups/rs1/${m1.host}_${m1.port}/dump.sql.zst`;
    const good = await s3Repo.store.getObject(key);
    assert.ok(good);
    const bad = Buffer.from(good);
    bad[bad.length - 1]! ^= 0x01;
    await s3Repo.store.putObject(key, bad);
    try {
      const f = await s3.cli('verify', 'rs1', '-c', spider);
      assert.equal(f.code, 1, f.stdout);
      assert.match(f.stdout, new RegExp(`^FAIL +SPT1 ${m1.host}:${m1.port} .*${key.replace(/\./g, '\\.')}: sha256 mismatch`, 'm'));
    } finally {
      await s3Repo.store.putObject(key, good);
    }

    const t = await s3.cli('verify', 'rs1', '-c', spider, '--restore-test', '--shard', '1');
    assert.equal(t.code, 0, `${t.stdout}\n${t.stderr}`);
    assert.match(t.stdout, /restore test SPT1 .*\(mariadb-dump\): 1 tables, CHECKSUM TABLE equal to the source/);

    const out = mkdtempSync(join(tmpdir(), 'sb-get-'));
    try {
      const g = await s3.cli('repo', 'get', 'rs1', `${m1.host}_${m1.port}`, '--out', out);
      assert.equal(g.code, 0, `${g.stdout}\n${g.stderr}`);
      assert.equal(sha256(readFileSync(join(out, 'dump.sql.zst'))), sha256(good));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }

    const e = await s3.cli('expire', '--keep-days', '0', '--confirm', '-c', spider);
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stdout, /deleted 0 backup\(s\), 0 B freed; 1 kept \(newest complete: rs1\)/);
    const locks = await s3Repo.store.list('s3/locks/');
    assert.deepEqual(locks, [], 'every lock released');
  });
});
