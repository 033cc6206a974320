// The built-in runners ([backup] runner = mariadb-dump | mariadb-backup) against a real cluster:
// schedule → check --run backs every instance up with the real tool; `verify` passes on a good
// backup and names a flipped byte and a missing manifest; `verify --restore-test` restores a shard
// into a throw-away instance and compares CHECKSUM TABLE with the source. A backup blocked midway
// shows no password on any command line, and its failure or its cancel leaves nothing that looks
// complete.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { ADMIN_PASSWORD, type Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type TestCluster, type ClusterWorkspace } from './support/cluster.js';
import { insertTasks, statusOf } from './support/tasks.js';
import { waitFor } from './support/workspace.js';

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let m0: Instance;
let backupDir: string;

before(async () => {
  cluster = await setUpCluster({
    shards: 2,
    slaves: [0],
    tdbctl: true,
    workspaces: { ws: { serves: ['spider0', 'master0', 'master1', 'slave0'], config: { backup: { runner: 'mariadb-dump' } } } },
  });
  ({ ws } = cluster.workspaces);
  m0 = cluster.masters[0] as Instance;
  backupDir = join(ws.confDir, 'dbbak');
  for (const m of cluster.masters) {
    await cluster.exec(m, 'CREATE DATABASE shop');
    await cluster.exec(m, 'CREATE TABLE shop.orders (id int PRIMARY KEY, item varchar(40), price decimal(10,2), note blob)');
    await cluster.exec(m, 'CREATE TABLE shop.customers (id int PRIMARY KEY, name varchar(40)) ENGINE=MyISAM');
    for (let i = 0; i < 20; i++) {
      await cluster.exec(m, 'INSERT INTO shop.orders VALUES (?, ?, ?, ?)', [
        i,
        `item-${m.shardValue}-${i}`,
        i * 1.5,
        Buffer.from([0, i, 255]),
      ]);
      await cluster.exec(m, 'INSERT INTO shop.customers VALUES (?, ?)', [i, `name ${i} of shard ${m.shardValue}`]);
    }
  }
  await cluster.waitReplicated();
});

after(() => cluster?.close());

const dirOf = (id: string, inst: Instance) => join(backupDir, id, `${inst.host}_${inst.port}`);

async function scheduleAndRun(id: string): Promise<void> {
  const s = await ws.cli('schedule', '-c', ws.dropIn(cluster.spider), `--backup-id=${id}`);
  assert.equal(s.code, 0, s.stderr);
  await cluster.waitReplicated();
  const r = await ws.cli('check', '--run');
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
}

function flipByte(file: string): void {
  const buf = readFileSync(file);
  const at = Math.floor(buf.length / 2);
  buf[at] = (buf[at] as number) ^ 0x01;
  writeFileSync(file, buf);
}

for (const tool of ['mariadb-dump', 'mariadb-backup'] as const) {
  describe(`runner = ${tool}`, () => {
    const id = `rt-${tool}`;
    before(() => ws.writeAgentConfig({ backup: { runner: tool } }));

    test('backs up every instance into <BackupDir>/<id>/<host>_<port>/ with a manifest; verify passes', { timeout: 240_000 }, async () => {
      await scheduleAndRun(id);
      for (const inst of [cluster.spider, ...cluster.masters, ...cluster.slaves]) {
        assert.equal(await statusOf(cluster, inst, id), 'success', inst.name);
        const dir = dirOf(id, inst);
        const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
        assert.equal(manifest.backupId, id);
        assert.equal(manifest.port, inst.port);
        assert.equal(manifest.tool.name, tool);
        assert.match(manifest.tool.version, /MariaDB|mariadb/);
        assert.match(manifest.files[0].sha256, /^[0-9a-f]{64}$/);
        assert.equal(manifest.files[0].bytes, statSync(join(dir, manifest.files[0].name)).size);
        if (inst.role === 'master') assert.match(manifest.position.binlogFile ?? '', /mysql-bin\.\d+/, `${inst.name}: binlog position`);
        if (inst.role === 'master') assert.match(manifest.position.gtid ?? '', /^\d+-\d+-\d+/, `${inst.name}: GTID position`);
        // A replica's backup carries its master's position: where a restore from it rolls forward.
        if (inst.role === 'slave')
          assert.match(manifest.masterPosition?.binlogFile ?? '', /mysql-bin\.\d+/, `${inst.name}: master position`);
        assert.deepEqual(
          readdirSync(join(backupDir, id)).filter((f) => f.endsWith('.partial')),
          [],
        );
      }
      if (tool === 'mariadb-dump') {
        // The spider node's dump holds its Spider tables' definitions, not the shards' rows.
        const dump = spawnSync('zstd', ['-q', '-d', '-c', join(dirOf(id, cluster.spider), 'dump.sql.zst')], { maxBuffer: 1 << 28 });
        assert.match(dump.stdout.toString(), /CREATE TABLE `global_backup`[^;]*ENGINE=SPIDER/);
        assert.doesNotMatch(dump.stdout.toString(), /INSERT INTO `global_backup`/);
        const shard = spawnSync('zstd', ['-q', '-d', '-c', join(dirOf(id, m0), 'dump.sql.zst')], { maxBuffer: 1 << 28 });
        assert.match(shard.stdout.toString(), /INSERT INTO `global_backup`/);
      }
      const v = await ws.cli('verify', id);
      assert.equal(v.code, 0, `${v.stdout}\n${v.stderr}`);
      assert.match(v.stdout, /all 4 instances verified/);
      assert.equal(v.stdout.match(/^ok /gm)?.length, 4, v.stdout);
    });

    test('verify --restore-test restores a shard and CHECKSUM TABLE matches the source', { timeout: 240_000 }, async () => {
      const r = await ws.cli('verify', id, '--restore-test', '--shard', '1');
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, new RegExp(`restore test SPT1 .*\\(${tool}\\): 2 tables, CHECKSUM TABLE equal to the source`));
    });

    test('verify names a flipped byte and a missing manifest, and exits 1', { timeout: 120_000 }, async () => {
      const dir = dirOf(id, m0);
      const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
      const data = join(dir, manifest.files[0].name);
      flipByte(data);
      const flipped = await ws.cli('verify', id);
      assert.equal(flipped.code, 1, flipped.stdout);
      assert.match(flipped.stdout, new RegExp(`^FAIL +SPT0 ${m0.host}:${m0.port} .*sha256 mismatch`, 'm'));
      assert.match(flipped.stdout, /1 of 4 instances FAILED: SPT0/);
      flipByte(data);
      const text = readFileSync(join(dir, 'manifest.json'));
      rmSync(join(dir, 'manifest.json'));
      const missing = await ws.cli('verify', id);
      assert.equal(missing.code, 1, missing.stdout);
      assert.match(missing.stdout, new RegExp(`^FAIL +SPT0 ${m0.host}:${m0.port} .*manifest missing`, 'm'));
      writeFileSync(join(dir, 'manifest.json'), text);
      assert.equal((await ws.cli('verify', id)).code, 0);
    });
  });
}

/** Pids of processes whose command line's first word ends with `name` and whose environment carries `id`. */
function toolPids(name: string, id: string): number[] {
  const found: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      // The tool itself, not its `--version` probe.
      if (!(argv[0] ?? '').endsWith(name) || !argv.some((a) => a.startsWith('--defaults-file='))) continue;
      // A zombie nobody reaps (no init in a container) has ended.
      if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${e}/stat`, 'utf8'))) continue;
      if (readFileSync(`/proc/${e}/environ`, 'utf8').includes(id)) found.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Every process whose command line holds `secret`. */
function cmdlinesHolding(secret: string): string[] {
  const hits: string[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      if (cmd.includes(secret)) hits.push(`${e}: ${cmd.replace(/\0/g, ' ')}`);
    } catch {
      // gone meanwhile
    }
  }
  return hits;
}

for (const tool of ['mariadb-dump', 'mariadb-backup'] as const) {
  describe(`a backup blocked midway (${tool})`, () => {
    let locker: mysql.Connection;
    before(async () => {
      // The default grace (the workspace's 1 s can run out on a loaded machine before the runner has
      // removed its partial output; README "Backup runners").
      ws.writeAgentConfig({ backup: { runner: tool, kill_grace: '10s' } });
      // mariadb-dump's FLUSH TABLES WITH READ LOCK (--master-data) and mariadb-backup's BACKUP STAGE
      // wait for these write locks: the backup stays midway.
      locker = await mysql.createConnection({ socketPath: m0.socket, user: 'root' });
      await locker.query('LOCK TABLES shop.orders WRITE, shop.customers WRITE');
    });
    after(async () => {
      await locker?.query('UNLOCK TABLES').catch(() => undefined);
      await locker?.end().catch(() => undefined);
    });

    /** What a timed-out wait saw: the server's sessions, the backup's processes, the logs. */
    async function explain(id: string): Promise<string> {
      const sessions = await cluster.query(m0, 'SELECT ID, USER, COMMAND, TIME, STATE, INFO FROM information_schema.PROCESSLIST');
      const procs = readdirSync('/proc')
        .filter((e) => /^\d+$/.test(e))
        .flatMap((e) => {
          try {
            if (!readFileSync(`/proc/${e}/environ`, 'utf8').includes(id)) return [];
            return [`${readFileSync(`/proc/${e}/stat`, 'utf8').split(' ').slice(0, 3).join(' ')}`];
          } catch {
            return [];
          }
        });
      const log = existsSync(join(ws.dir, 'agent.log')) ? readFileSync(join(ws.dir, 'agent.log'), 'utf8').slice(-3000) : '';
      return JSON.stringify({ sessions, procs, status: await statusOf(cluster, m0, id), log });
    }

    async function startBlocked(id: string) {
      await insertTasks(cluster, [{ backupId: id, for: m0 }]);
      const run = ws.start(['check', '--run', '-c', ws.dropIn(m0)]);
      const [pid] = await waitFor(`${tool} of ${id}`, async () => {
        const p = toolPids(tool, id);
        if (p.length > 0 && existsSync(`${dirOf(id, m0)}.partial`)) return p;
        // Not blocked after all: say why rather than time out.
        if (run.child.exitCode !== null)
          assert.fail(`check --run ended: ${run.stdout()}\n${run.stderr()}\n${await statusOf(cluster, m0, id)}`);
        return undefined;
      });
      return { run, pid: pid as number };
    }

    test('no password on any command line; killed midway it leaves no directory, the task failed', { timeout: 120_000 }, async () => {
      const id = `rt-fail-${tool}`;
      const { run, pid } = await startBlocked(id);
      assert.deepEqual(cmdlinesHolding(ADMIN_PASSWORD), [], 'the password is on a command line');
      // The credentials file the tool reads: owner-only, in an owner-only directory.
      const defaults = (
        readFileSync(`/proc/${pid}/cmdline`, 'utf8')
          .split('\0')
          .find((a) => a.startsWith('--defaults-file=')) ?? ''
      ).slice(16);
      assert.equal(statSync(defaults).mode & 0o777, 0o600);
      assert.equal(statSync(join(defaults, '..')).mode & 0o777, 0o700);
      assert.ok(!existsSync(dirOf(id, m0)), 'no final directory while it runs');
      process.kill(pid, 'SIGKILL');
      const r = await run.result;
      assert.equal(r.code, 1, r.stdout);
      assert.match((await statusOf(cluster, m0, id)) ?? '', /^failed/);
      assert.ok(!existsSync(dirOf(id, m0)) && !existsSync(`${dirOf(id, m0)}.partial`), 'nothing left behind');
      assert.ok(!existsSync(defaults), 'the credentials file is removed');
      const v = await ws.cli('verify', id);
      assert.equal(v.code, 1);
      assert.match(v.stdout, /task status is "failed.*no manifest published/);
    });

    test('a quit kills the backup group: no directory left, quit: success', { timeout: 120_000 }, async () => {
      const id = `rt-quit-${tool}`;
      const { run, pid } = await startBlocked(id);
      await cluster.exec(m0, "UPDATE infodba_schema.global_backup SET BackupStatus = 'quit' WHERE BackupId = ?", [id]);
      const q = await ws.cli('check', '--run', '-c', ws.dropIn(m0));
      assert.equal(q.code, 0, q.stderr);
      const first = await run.result;
      writeFileSync(join(ws.dir, 'agent.log'), `${first.stderr}\n---\n${q.stderr}`);
      await waitFor('the dump to be gone', () => toolPids(tool, id).length === 0 || undefined).catch(async (err: Error) => {
        throw new Error(`${err.message}: ${await explain(id)}`);
      });
      assert.ok(!existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'), 'the dump was killed');
      assert.equal(await statusOf(cluster, m0, id), 'quit: success');
      await waitFor('the partial directory to be removed', () => !existsSync(`${dirOf(id, m0)}.partial`) || undefined).catch(
        async (err: Error) => {
          throw new Error(`${err.message}: ${await explain(id)}`);
        },
      );
      assert.ok(!existsSync(dirOf(id, m0)), 'no final directory');
    });
  });
}
