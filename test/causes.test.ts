// Errors that name their cause (issue 17 item 4) on a real cluster: a wrong password or port in
// the spider node's ini is the ini's fault (named, with the user and the server), never tdbctl's;
// a shard master's ini given to a spider-side command names both roles; `check` with an instance
// it cannot read says so instead of "nothing waiting"; `verify` run by a user who cannot read the
// backup files says "permission denied", not "not on this host".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_USER, type Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { clearTasks, insertTasks, statusOf } from './support/tasks.js';
import { DaemonProcess, freePort } from './support/daemon.js';
import { CLI, type CliResult } from './support/workspace.js';

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let m0: Instance;

before(async () => {
  cluster = await setUpCluster({
    shards: 1,
    slaves: [],
    tdbctl: true,
    workspaces: { ws: { config: { backup: { runner: 'mariadb-dump' } } } },
  });
  ({ ws } = cluster.workspaces);
  m0 = cluster.masters[0] as Instance;
});

after(() => cluster?.close());

/** An ini of `inst` in a directory of its own (the drop-ins stay as they are), with `extra` keys. */
function iniOf(name: string, inst: Instance, extra: Record<string, string> = {}): string {
  const dir = join(ws.dir, name);
  mkdirSync(dir, { recursive: true });
  return cluster.writeInstanceIni(dir, inst, extra);
}

const addr = (i: { host: string; port: number }) => `${i.host}:${i.port}`;
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe("the spider node's ini", { timeout: 120_000 }, () => {
  test('a wrong password names the ini, the user and the server that refused; not tdbctl, never the password', async () => {
    const ini = iniOf('badpw', cluster.spider, { MysqlPasswd: 'not-the-password' });
    for (const args of [
      ['query', '-c', ini],
      ['schedule', '-c', ini, '--backup-id=causes-pw'],
    ]) {
      const r = await ws.cli(...args);
      assert.equal(r.code, 1, `${args[0]}: ${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(`${escape(addr(cluster.spider))}: refused the login of user '${ADMIN_USER}' of ${escape(ini)}`));
      assert.match(r.stderr, /Access denied/);
      assert.doesNotMatch(r.stderr, /tdbctl/, r.stderr);
      assert.doesNotMatch(r.stderr + r.stdout, /not-the-password/);
    }
  });

  test('a port nobody listens on names the ini and the address; not tdbctl', async () => {
    const port = await freePort();
    const ini = iniOf('badport', cluster.spider, { MysqlPort: String(port) });
    const r = await ws.cli('query', '-c', ini);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(
        `${escape(`${cluster.spider.host}:${port}`)}: connect ECONNREFUSED [^\n]* \\(the address is MysqlHost:MysqlPort of ${escape(ini)}`,
      ),
    );
    assert.match(r.stderr, /ECONNREFUSED/);
    assert.doesNotMatch(r.stderr, /tdbctl/, r.stderr);
  });

  test("a refused login at tdbctl names tdbctl, the login's ini and where its address came from", async () => {
    // tdbctl's backing database knows no such user; the spider node does.
    await cluster.exec(cluster.spider, `CREATE USER IF NOT EXISTS 'spideronly'@'%' IDENTIFIED BY 'pw-spider-only'`);
    await cluster.exec(cluster.spider, `GRANT ALL ON *.* TO 'spideronly'@'%'`);
    const ini = iniOf('spideronly', cluster.spider, { MysqlUser: 'spideronly', MysqlPasswd: 'pw-spider-only' });
    const r = await ws.cli('query', '-c', ini);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(`the tdbctl node refused the login of user 'spideronly' of ${escape(ini)} \\(its address: spider port`),
    );
    assert.doesNotMatch(r.stderr, /pw-spider-only/);
  });

  test("a shard master's ini for a spider-side command names its role and the one needed", async () => {
    const ini = iniOf('master', m0);
    const r = await ws.cli('schedule', '-c', ini, '--backup-id=causes-role');
    assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(
        `-c ${escape(ini)}: this ini is of a shard master \\(MysqlRole master, port ${m0.port}\\); this command needs a spider node's ini`,
      ),
    );
    assert.doesNotMatch(r.stderr, /tdbctl/);
  });
});

describe('check with an instance it cannot read', { timeout: 120_000 }, () => {
  test('says which could not be read, never "No backup task waiting", and exits 1', async () => {
    await clearTasks(cluster);
    const host = cluster.workspace({ serves: [m0] });
    try {
      const port = await freePort();
      const bad = cluster.writeInstanceIni(host.confDir, { ...m0, port }, { MysqlPort: String(port) });
      const r = await host.cli('check');
      assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
      assert.doesNotMatch(r.stdout, /No backup task waiting for this host/);
      assert.match(r.stdout, new RegExp(`connect ECONNREFUSED [^\n]* \\(the address is MysqlHost:MysqlPort of ${escape(bad)}`));
      assert.match(r.stdout, new RegExp(`No backup task waiting on the instances read; not read: port ${port} \\(${escape(bad)}\\)`));
      const wrongPw = cluster.workspace({ serves: [m0], ini: { MysqlPasswd: 'pw-wrong-xyz' } });
      try {
        // Host `status` shows what the daemon met: the refused login, with the ini and the user.
        const d = new DaemonProcess(wrongPw);
        try {
          await d.ticks(1);
          const s = await wrongPw.cli('status');
          assert.match(
            s.stdout + s.stderr,
            new RegExp(`refused the login of user '${ADMIN_USER}' of ${escape(join(wrongPw.confDir, `dbbackup.${m0.port}.ini`))}`),
          );
          assert.doesNotMatch(s.stdout + s.stderr, /pw-wrong-xyz/);
        } finally {
          d.child.kill('SIGTERM');
          await d.exited;
        }
      } finally {
        wrongPw.close();
      }
    } finally {
      host.close();
    }
  });
});

/** The CLI as `nobody`: a user who cannot read root's 0700 directories. */
function cliAsNobody(args: string[]): Promise<CliResult> {
  const child = spawn(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, '--agent-config', ws.agentIni, ...args],
    {
      cwd: '/',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('verify by a user who cannot read the files', { timeout: 240_000 }, () => {
  test('"permission denied, run as the service user", not "not on this host"; exit 1', async () => {
    await clearTasks(cluster);
    const id = 'causes-unreadable';
    const spiderIni = ws.serve([cluster.spider, m0]).dropIn(cluster.spider);
    const s = await ws.cli('schedule', '-c', spiderIni, `--backup-id=${id}`);
    assert.equal(s.code, 0, s.stderr);
    const run = await ws.cli('check', '--run');
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    // nobody may read the agent config and the drop-ins, not the backup of this id.
    chmodSync(ws.dir, 0o755);
    const idDir = join(ws.confDir, 'dbbak', id);
    chmodSync(idDir, 0o700);
    const v = await cliAsNobody(['verify', id]);
    assert.equal(v.code, 1, `${v.stdout}\n${v.stderr}`);
    assert.doesNotMatch(v.stdout, /not on this host/);
    assert.match(
      v.stdout,
      new RegExp(
        `^FAIL +SPT0 .*cannot read ${escape(join(idDir, `${m0.host}_${m0.port}`))}: permission denied \\(run as the service user`,
        'm',
      ),
    );
    // Readable again, it verifies.
    chmodSync(idDir, 0o755);
    assert.equal((await ws.cli('verify', id)).code, 0);
  });
});

describe('a step of the database clock', { timeout: 180_000 }, () => {
  test('is logged, and a waiting task is not expired by it at that look', async () => {
    await clearTasks(cluster);
    const host = cluster.workspace({ serves: [m0] });
    const d = new DaemonProcess(host);
    try {
      // Paused: nothing starts, housekeeping (and so expiry) goes on.
      assert.equal((await host.cli('pause', '--for', '1h', '--reason', 'clock step test')).code, 0);
      const id = 'causes-clock';
      await insertTasks(cluster, [{ backupId: id, for: m0 }]);
      await d.ready();
      await d.nextTicks(2); // the row seen at two looks
      // What a step of +13 h shows the agent: every age 13 h older at once. CreatedAt moved back by
      // that much is the same to it (ages are NOW() - CreatedAt), without stepping the test host.
      await cluster.exec(m0, 'UPDATE infodba_schema.global_backup SET CreatedAt = CreatedAt - INTERVAL 13 HOUR WHERE BackupId = ?', [id]);
      await d.nextTicks(1);
      const warned = await d.waitLog(/the database clock stepped \+13/);
      assert.equal(warned.port, m0.port);
      assert.equal(await statusOf(cluster, m0, id), 'init', 'expired by the step itself');
      // One more look, with no step since: the age stands, and the task expires as before.
      await d.nextTicks(1);
      assert.match((await statusOf(cluster, m0, id)) ?? '', /^quit/);
    } finally {
      d.child.kill('SIGTERM');
      await d.exited;
      host.close();
    }
  });
});
