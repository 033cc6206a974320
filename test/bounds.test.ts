// Every wait of a spider-side command is bounded (issue 17 item 6): a hung instance (SIGSTOP) fails
// its own statements within [schedule] statement_timeout and is named; it never keeps a command
// alive. Each stopped mariadbd is SIGCONTed in `finally`, whatever the test did.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import type { Instance } from '../src/sandbox/cluster.js';
import { createCancelTable } from '../src/sql/ddl.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import type { CliResult } from './support/workspace.js';
import { waitFor } from './support/workspace.js';

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let spiderIni: string;

before(async () => {
  cluster = await setUpCluster({
    shards: 2,
    slaves: [0],
    spiders: 2,
    tdbctl: true,
    workspaces: {
      ws: {
        serves: ['spider0'],
        config: { schedule: { wait_interval: '300ms', unclaimed_after: '1h', max_failed_polls: '2', statement_timeout: '2s' } },
      },
    },
  });
  ({ ws } = cluster.workspaces);
  spiderIni = ws.dropIn(cluster.spider);
});

after(() => cluster?.close());

/** Runs `fn` with `inst`'s mariadbd stopped (SIGSTOP); it is always continued. */
async function whileHung<T>(inst: Instance, fn: () => Promise<T>): Promise<T> {
  const pid = cluster.pidOf(inst);
  assert.ok(pid !== undefined, `${inst.name} has a pid`);
  process.kill(pid, 'SIGSTOP');
  try {
    return await fn();
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

/** The command's result, or a failed assertion if it has not exited within `ms` (it would hang forever). */
async function exitsWithin(
  run: { result: Promise<CliResult>; child: { kill(s: NodeJS.Signals): void }; stdout(): string; stderr(): string },
  ms: number,
): Promise<CliResult> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), ms)));
  try {
    const r = await Promise.race([run.result, hung]);
    if (r === 'hung') {
      run.child.kill('SIGKILL');
      assert.fail(`the command did not exit within ${ms / 1000} s: ${run.stdout()}${run.stderr()}`);
    }
    return r;
  } finally {
    clearTimeout(timer);
  }
}

describe('every wait bounded', { timeout: 240_000 }, () => {
  test('schedule --wait: a replica hung after the first round is named in the poll errors and counted by max_failed_polls', async () => {
    const slave = cluster.slaves[0] as Instance;
    const run = ws.start(['schedule', '-c', spiderIni, '--backup-id', 'hung-wait', '--wait']);
    await waitFor('the first progress line', () => /hung-wait: \d+\/\d+ success/.test(run.stdout()), 60_000);
    const r = await whileHung(slave, () => exitsWithin(run, 90_000));
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(
      r.stdout,
      new RegExp(`poll error: SPT_SLAVE0 ${slave.host}:${slave.port}: .*no answer within 2.0 s \\(statement timeout\\)`),
    );
    assert.match(r.stdout + r.stderr, /gave up after too many failed polls/);
  });

  test('query, list, verify and restore-plan with a hung replica end, naming it', async () => {
    const slave = cluster.slaves[0] as Instance;
    await whileHung(slave, async () => {
      for (const args of [
        ['query', '--BackupId', 'hung-wait'],
        ['list'],
        ['verify', 'hung-wait'],
        ['restore-plan', 'hung-wait', '--to-point', 'hung-wait'],
        ['cancel', 'hung-wait'],
      ]) {
        const r = await exitsWithin(ws.start([...args, '-c', spiderIni]), 60_000);
        assert.match(r.stdout + r.stderr, new RegExp(`${slave.port}`), `${args[0]} names the hung replica: ${r.stdout}${r.stderr}`);
      }
    });
  });

  test('restore-point with one of two Spider nodes hung exits, naming it', async () => {
    const other = cluster.spiders[1] as Instance;
    const r = await whileHung(other, () =>
      exitsWithin(
        ws.start(['restore-point', 'rp-hung', '-c', spiderIni, '--acquire-timeout', '1s', '--hold-timeout', '2s', '--attempts', '1']),
        60_000,
      ),
    );
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`${other.host}:${other.port}`));
  });

  test('restore-point while another session holds FLUSH TABLES WITH READ LOCK on the spider node: bounded, names what held it', async () => {
    const ok = await exitsWithin(ws.start(['restore-point', 'rp-before', '-c', spiderIni]), 60_000);
    assert.equal(ok.code, 0, ok.stderr);
    const holder = await mysql.createConnection({ socketPath: cluster.spider.socket, user: 'root' });
    try {
      const [[{ id }]] = (await holder.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
      await holder.query('FLUSH TABLES WITH READ LOCK');
      const r = await exitsWithin(
        ws.start(['restore-point', 'rp-ftwrl', '-c', spiderIni, '--acquire-timeout', '1s', '--hold-timeout', '2s', '--attempts', '1']),
        60_000,
      );
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, new RegExp(`${cluster.spider.host}:${cluster.spider.port}`));
      assert.match(r.stderr, new RegExp(`connection ${id} .*holds the global read lock|a session holds the global read lock`));
    } finally {
      await holder.end();
    }
    const points = await cluster.query<{ n: number }>(
      cluster.spider,
      'SELECT COUNT(*) AS n FROM infodba_schema.spiderbackup_restore_point WHERE Name = ?',
      ['rp-ftwrl'],
    );
    assert.equal(Number(points[0]?.n), 0, 'nothing recorded');
  });

  test("a statement waiting on another session's lock ends by lock_wait_timeout, naming the node and who held it", async () => {
    const slave = cluster.slaves[0] as Instance;
    const master = cluster.masters[0] as Instance;
    const sch = await exitsWithin(ws.start(['schedule', '-c', spiderIni, '--backup-id', 'lock-wait']), 60_000);
    assert.equal(sch.code, 0, sch.stderr);
    await cluster.waitReplicated();
    await cluster.exec(master, createCancelTable());
    await cluster.waitReplicated();
    const installed = await cluster.query<{ n: number }>(
      slave,
      "SELECT COUNT(*) AS n FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO'",
    );
    // On the replica the holder is named (the plugin tells who holds a metadata lock); on the master it is not installed.
    if (Number(installed[0]?.n) === 0) await cluster.exec(slave, "INSTALL SONAME 'metadata_lock_info'");

    const onSlave = await mysql.createConnection({ socketPath: slave.socket, user: 'root' });
    try {
      const [[{ id }]] = (await onSlave.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
      await onSlave.query('LOCK TABLES infodba_schema.global_backup WRITE');
      const r = await exitsWithin(ws.start(['query', '--BackupId', 'lock-wait', '-c', spiderIni]), 60_000);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `${slave.host}:${slave.port}: Lock wait timeout exceeded.*: waited lock_wait_timeout \\(1 s\\) for a lock held by ` +
            `connection ${id} \\(root@localhost, Sleep for \\d+ s: MDL_SHARED_NO_READ_WRITE on infodba_schema\\.global_backup\\)`,
        ),
      );
      assert.doesNotMatch(r.stderr, /statement timeout/, 'the server answered before the client gave up');
    } finally {
      await onSlave.end();
    }

    const onMaster = await mysql.createConnection({ socketPath: master.socket, user: 'root' });
    try {
      await onMaster.query('LOCK TABLES infodba_schema.spiderbackup_cancel WRITE');
      const r = await exitsWithin(ws.start(['cancel', 'lock-wait', '-c', spiderIni]), 60_000);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `SPT0 ${master.host}:${master.port}: cancel not recorded \\(${master.host}:${master.port}: Lock wait timeout exceeded.*: ` +
            'waited lock_wait_timeout \\(1 s\\) for a lock held by another session, not named here',
        ),
      );
      assert.doesNotMatch(r.stderr, /statement timeout/);
    } finally {
      await onMaster.end();
    }
  });
});
