// `spiderbackup check` against a real cluster: two masters, a replica of masters[0], a spider
// node. Every transition of SPEC §3 check, with the real CLI and real child processes.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, type Cluster } from '../src/sandbox/cluster.js';
import { byPort, setUpCluster, type TestCluster, type ClusterWorkspace } from './support/cluster.js';
import { insertTasks, statusOf, taskOf } from './support/tasks.js';
import { pidAlive, waitFor, Workspace } from './support/workspace.js';

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let m0: Cluster['masters'][number];
let m1: Cluster['masters'][number];
// The masters in port order: the order in which one host backs its instances up.
let p0: Cluster['masters'][number];
let p1: Cluster['masters'][number];

before(async () => {
  cluster = await setUpCluster({ shards: 2, slaves: [0], workspaces: { ws: { serves: ['master0', 'master1'] } } });
  ({ ws } = cluster.workspaces);
  [m0, m1] = cluster.masters as [typeof m0, typeof m1];
  [p0, p1] = byPort([m0, m1]) as [typeof m0, typeof m1];
});

after(() => cluster?.close());

beforeEach(() => cluster.reset());

/** A live process whose command line carries `marker`, standing in for some process. */
function liveProcess(...marker: string[]) {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', ...marker], { stdio: 'ignore' });
  return child;
}

async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => c.on('close', r));
  return c.pid as number;
}

describe('check without --run', () => {
  test('lists what would run, in table and JSON, and changes nothing', async () => {
    await insertTasks(cluster, [
      { backupId: 'dry-1', for: p0 },
      { backupId: 'dry-1', for: p1 },
    ]);
    const table = await ws.cli('check');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /Would back up, one after another \(backup id dry-1\)/);
    assert.match(table.stdout, new RegExp(`${p0.port}.*SPT.*init`));
    const json = await ws.cli('check', '--format', 'json');
    const out = JSON.parse(json.stdout) as { wouldRun: { Port: number; command: string[] }[] };
    assert.deepEqual(
      out.wouldRun.map((t) => t.Port),
      [p0.port, p1.port],
    );
    assert.ok(out.wouldRun[0]?.command.includes('dry-1'));
    assert.equal(await statusOf(cluster, p0, 'dry-1'), 'init');
    assert.equal(ws.runs().length, 0);
    assert.equal((out.wouldRun[0] as unknown as { TaskPid: number }).TaskPid, -1, 'the JSON carries TaskPid like the table');
  });

  test('with no instance file it says that no instance was found, not that nothing waits', async () => {
    const empty = new Workspace();
    try {
      const r = await empty.cli('check');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`No instance found: no dbbackup.<port>.ini in ${empty.confDir}`));
    } finally {
      empty.close();
    }
  });
});

describe('check --run', () => {
  test(
    'backs up every instance of the id one after another; exit code decides success/failed; one failure does not stop the ' + 'others',
    async () => {
      await insertTasks(cluster, [
        { backupId: 'run-1', for: p0 },
        { backupId: 'run-1', for: p1 },
      ]);
      ws.behave(p0.port, { exitCode: 3, stderr: 'disk full on /data/dbbak\n' });
      const r = await ws.cli('check', '--run');
      assert.equal(r.code, 1, 'a failed instance makes the run fail');
      assert.deepEqual(
        ws.runs().map((x) => x.port),
        [p0.port, p1.port],
      );
      assert.equal(await statusOf(cluster, p0, 'run-1'), 'failed: exit code 3');
      assert.equal(await statusOf(cluster, p1, 'run-1'), 'success');
      // the argument vector comes from the template, placeholders substituted
      const run1 = ws.runs()[1];
      assert.equal(run1?.config, join(ws.confDir, `dbbackup.${p1.port}.ini`));
      assert.equal(run1?.shardValue, String(p1.shardValue));
      assert.equal(run1?.cwd, ws.dir, 'runs in [backup] install_dir');
      // logs: JSON lines, task lines carry backupId and port, stderr tail logged, no password
      const lines = r.stderr
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const failed = lines.find((l) => l.msg === 'backup failed');
      assert.equal(failed?.backupId, 'run-1');
      assert.equal(failed?.port, p0.port);
      assert.match(String(failed?.stderrTail), /disk full/);
      for (const l of lines.filter((x) => typeof x.msg === 'string' && /backup|task/.test(x.msg as string))) {
        assert.ok(l.backupId !== undefined && l.port !== undefined, JSON.stringify(l));
      }
      assert.ok(!r.stderr.includes(ADMIN_PASSWORD) && !r.stdout.includes(ADMIN_PASSWORD));
    },
  );

  test('a replicated task runs on the replica and is updated there only', async () => {
    const slave = cluster.slaves[0] as Cluster['slaves'][number];
    await insertTasks(cluster, [{ backupId: 'rep-1', for: slave }]);
    assert.equal(await statusOf(cluster, slave, 'rep-1', slave), 'replicated');
    const ini = ws.iniFile(slave);
    const r = await ws.cli('check', '--run', '-c', ini);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await statusOf(cluster, slave, 'rep-1', slave), 'success');
    assert.equal(await statusOf(cluster, slave, 'rep-1', m0), 'replicated', 'never changes on the master');
    assert.equal(ws.runs()[0]?.kind, 'remote');
  });

  test('the spider-master task is read and updated through the Spider table, with the spider command', async () => {
    await insertTasks(cluster, [{ backupId: 'spi-1', for: cluster.spider }]);
    const ini = ws.iniFile(cluster.spider);
    const r = await ws.cli('-c', ini, 'check', '--run');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ws.runs()[0]?.kind, 'spider');
    assert.equal(await statusOf(cluster, cluster.spider, 'spi-1'), 'success');
    assert.equal(await statusOf(cluster, cluster.spider, 'spi-1', m0), 'success', 'stored on the master of shard 0');
  });

  test('two check --run started at the same moment never run a task twice', async () => {
    await insertTasks(cluster, [
      { backupId: 'race-1', for: m0 },
      { backupId: 'race-1', for: m1 },
    ]);
    const [a, b] = await Promise.all([ws.cli('check', '--run'), ws.cli('check', '--run')]);
    assert.ok(a.code === 0 && b.code === 0, a.stderr + b.stderr);
    const runs = ws
      .runs()
      .map((x) => `${x.backupId}@${x.port}`)
      .sort();
    assert.deepEqual(runs, [`race-1@${m0.port}`, `race-1@${m1.port}`].sort(), 'each task ran exactly once');
    assert.equal(await statusOf(cluster, m0, 'race-1'), 'success');
    assert.equal(await statusOf(cluster, m1, 'race-1'), 'success');
  });

  test('one running backup id per machine: the earlier id finishes on every instance before the next starts', async () => {
    await insertTasks(cluster, [
      { backupId: 'B-later', for: p0, createdAgoS: 60 },
      { backupId: 'B-later', for: p1, createdAgoS: 60 },
      { backupId: 'A-earlier', for: p0, createdAgoS: 120 },
      { backupId: 'A-earlier', for: p1, createdAgoS: 120 },
    ]);
    ws.behave(p0.port, { block: true });
    const first = ws.start(['check', '--run']);
    try {
      await waitFor('A-earlier to start on the first instance', () => ws.runs().length === 1);
      assert.equal(ws.runs()[0]?.backupId, 'A-earlier');
      const second = await ws.cli('check', '--run');
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /A backup of this host is running/);
      assert.equal(ws.runs().length, 1, 'nothing else started while one runs');
    } finally {
      ws.release(p0.port);
      await first.result;
    }
    assert.equal((await first.result).code, 0);
    const third = await ws.cli('check', '--run');
    assert.equal(third.code, 0, third.stderr);
    assert.deepEqual(
      ws.runs().map((x) => `${x.backupId}@${x.port}`),
      [`A-earlier@${p0.port}`, `A-earlier@${p1.port}`, `B-later@${p0.port}`, `B-later@${p1.port}`],
    );
  });

  test('a backup that exits but leaves a helper holding its stderr is recorded by its own exit code', async () => {
    await insertTasks(cluster, [{ backupId: 'linger-1', for: m0 }]);
    ws.behave(m0.port, { lingering: true, exitCode: 0 });
    try {
      const r = await ws.cli('check', '--run', '-c', ws.dropIn(m0));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await statusOf(cluster, m0, 'linger-1'), 'success');
    } finally {
      const helper = ws.runs()[0]?.grandchild;
      if (helper) process.kill(helper, 'SIGKILL');
    }
  });

  test('--backup-id runs that id only', async () => {
    await insertTasks(cluster, [
      { backupId: 'old-1', for: m0, createdAgoS: 600 },
      { backupId: 'wanted', for: m0 },
    ]);
    const r = await ws.cli('check', '--run', '--backup-id=wanted');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      ws.runs().map((x) => x.backupId),
      ['wanted'],
    );
    assert.equal(await statusOf(cluster, m0, 'old-1'), 'init');
  });

  test('status is re-checked before each instance: a task quit meanwhile is not started', async () => {
    await insertTasks(cluster, [
      { backupId: 'recheck', for: p0 },
      { backupId: 'recheck', for: p1 },
    ]);
    ws.behave(p0.port, { block: true });
    const run = ws.start(['check', '--run']);
    try {
      await waitFor('first backup', () => ws.runs().length === 1);
      await cluster.exec(p1, "UPDATE infodba_schema.global_backup SET BackupStatus = 'quit' WHERE BackupId = 'recheck'");
    } finally {
      ws.release(p0.port);
      await run.result;
    }
    assert.deepEqual(
      ws.runs().map((x) => x.port),
      [p0.port],
    );
    assert.equal(await statusOf(cluster, p1, 'recheck'), 'quit');
  });
});

describe('housekeeping', () => {
  test('running with a dead pid → failed: process does not exist', async () => {
    await insertTasks(cluster, [{ backupId: 'dead-1', for: m0, status: 'running', taskPid: await deadPid() }]);
    const r = await ws.cli('check', '--run');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await statusOf(cluster, m0, 'dead-1'), 'failed: process does not exist');
  });

  test(
    'running with a recycled pid (command line without the backup id) → failed: cmdline has no backup-id; that process is left ' + 'alone',
    async () => {
      const stranger = liveProcess('some-other-program');
      try {
        await insertTasks(cluster, [{ backupId: 'recycled-1', for: m0, status: 'running', taskPid: stranger.pid as number }]);
        const r = await ws.cli('check', '--run');
        assert.equal(r.code, 0, r.stderr);
        // The old tool's reason is 32 characters; BackupStatus is varchar(30), so it is stored cut.
        assert.equal(await statusOf(cluster, m0, 'recycled-1'), 'failed: cmdline has no backup-');
        assert.ok(pidAlive(stranger.pid as number), 'a foreign process is never killed');
      } finally {
        stranger.kill('SIGKILL');
      }
    },
  );

  test('running with TaskPid -1: left alone just after the claim, failed: no pid once stale', async () => {
    await insertTasks(cluster, [
      { backupId: 'nopid-fresh', for: m0, status: 'running', taskPid: -1 },
      { backupId: 'nopid-stale', for: m1, status: 'running', taskPid: -1, updatedAgoS: 600 },
    ]);
    const r = await ws.cli('check', '--run');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await statusOf(cluster, m0, 'nopid-fresh'), 'running');
    assert.equal(await statusOf(cluster, m1, 'nopid-stale'), 'failed: no pid');
  });

  test('running for over 48 h → process tree killed, failed: timeout', async () => {
    const backup = liveProcess('--backup-id', 'old-run');
    await insertTasks(cluster, [
      { backupId: 'old-run', for: m0, status: 'running', taskPid: backup.pid as number, createdAgoS: 49 * 3600 },
    ]);
    const r = await ws.cli('check', '--run');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await statusOf(cluster, m0, 'old-run'), 'failed: timeout');
    await waitFor(
      'the timed-out process to die',
      () => !pidAlive(backup.pid as number) || backup.exitCode !== null || backup.signalCode !== null,
    );
  });

  test("quit → the whole tree (with a grandchild) is killed → quit: success; the backup's own exit does not overwrite it", async () => {
    await insertTasks(cluster, [{ backupId: 'quit-1', for: m0 }]);
    ws.behave(m0.port, { block: true, grandchild: true });
    const run = ws.start(['check', '--run']);
    try {
      const started = await waitFor('backup with grandchild', () => ws.runs()[0]);
      assert.ok(started.grandchild && pidAlive(started.grandchild));
      await cluster.exec(m0, "UPDATE infodba_schema.global_backup SET BackupStatus = 'quit' WHERE BackupId = 'quit-1'");
      const r = await ws.cli('check', '--run');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await statusOf(cluster, m0, 'quit-1'), 'quit: success');
      assert.ok(!pidAlive(started.pid), 'backup killed');
      await waitFor('grandchild killed', () => !pidAlive(started.grandchild as number));
    } finally {
      ws.release(m0.port);
      await run.result;
    }
    const first = await run.result;
    assert.equal(first.code, 1, 'the run that was stopped reports failure');
    assert.equal(await statusOf(cluster, m0, 'quit-1'), 'quit: success');
  });

  test('quit of a backup that ignores SIGTERM → SIGKILL after the grace → quit: success', async () => {
    await insertTasks(cluster, [{ backupId: 'quit-stubborn', for: m0 }]);
    ws.behave(m0.port, { block: true, ignoreTerm: true });
    const run = ws.start(['check', '--run']);
    try {
      const started = await waitFor('stubborn backup', () => ws.runs()[0]);
      await cluster.exec(m0, "UPDATE infodba_schema.global_backup SET BackupStatus = 'quit' WHERE BackupId = 'quit-stubborn'");
      const r = await ws.cli('check', '--run');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await statusOf(cluster, m0, 'quit-stubborn'), 'quit: success');
      assert.ok(!pidAlive(started.pid));
      assert.match(r.stderr, /"escalated":true/);
    } finally {
      ws.release(m0.port);
      await run.result;
    }
  });

  test('quit without a process → quit: no process', async () => {
    await insertTasks(cluster, [{ backupId: 'quit-none', for: m0, status: 'quit', taskPid: await deadPid() }]);
    const r = await ws.cli('check', '--run');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await statusOf(cluster, m0, 'quit-none'), 'quit: no process');
  });

  test('init/replicated older than 12 h → quit, then quit: no process; younger ones run', async () => {
    const slave = cluster.slaves[0] as Cluster['slaves'][number];
    await insertTasks(cluster, [
      { backupId: 'stale-init', for: m0, createdAgoS: 13 * 3600 },
      { backupId: 'stale-rep', for: slave, createdAgoS: 13 * 3600 },
    ]);
    const slaveIni = ws.iniFile(slave);
    const r = await ws.cli('check', '--run', '-c', `${ws.dropIn(m0)},${slaveIni}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await statusOf(cluster, m0, 'stale-init'), 'quit');
    assert.equal(await statusOf(cluster, slave, 'stale-rep', slave), 'quit');
    assert.equal(ws.runs().length, 0, 'an expired task never runs');
    await ws.cli('check', '--run');
    assert.equal(await statusOf(cluster, m0, 'stale-init'), 'quit: no process');
  });

  test('rows older than 30 days are deleted locally (not binlogged), never on a spider node', async () => {
    const slave = cluster.slaves[0] as Cluster['slaves'][number];
    await insertTasks(cluster, [
      { backupId: 'ancient', for: m0, status: 'success', createdAgoS: 31 * 86400 },
      { backupId: 'recent', for: m0, status: 'success', createdAgoS: 29 * 86400 },
      { backupId: 'ancient-spider', for: cluster.spider, status: 'success', createdAgoS: 31 * 86400 },
    ]);
    const spiderIni = ws.iniFile(cluster.spider);
    await ws.cli('check', '--run', '-c', spiderIni);
    assert.ok(await taskOf(cluster, cluster.spider, 'ancient-spider'), 'a spider node deletes nothing');
    assert.ok(await taskOf(cluster, m0, 'ancient'));
    const r = await ws.cli('check', '--run');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await taskOf(cluster, m0, 'ancient'), undefined);
    assert.ok(await taskOf(cluster, m0, 'recent'));
    await insertTasks(cluster, [{ backupId: 'marker', for: { role: 'master', host: 'x', port: 1, shardValue: 0 }, status: 'success' }], {
      on: m0,
    });
    await cluster.waitReplicated();
    assert.ok(await taskOf(cluster, m0, 'ancient', slave), 'the delete did not replicate');
  });
});

describe('bad configuration and unreachable instances', () => {
  test('a broken ini beside good ones is reported with file/key/value and skipped; the good ones run; exit 1', async () => {
    const broken = join(ws.confDir, 'dbbackup.29999.ini');
    writeFileSync(broken, '[Public]\nMysqlHost = 127.0.0.1\nMysqlPort = 29999x\nMysqlUser = u\nMysqlPasswd = p\n');
    try {
      await insertTasks(cluster, [{ backupId: 'cfg-1', for: m0 }]);
      const r = await ws.cli('check', '--run');
      assert.equal(r.code, 1);
      assert.match(r.stdout, /dbbackup\.29999\.ini: \[Public\] MysqlPort = "29999x": must be an integer/);
      assert.equal(await statusOf(cluster, m0, 'cfg-1'), 'success');
      assert.ok(!r.stderr.includes('    at '), 'no stack trace');
    } finally {
      writeFileSync(broken, '');
      (await import('node:fs')).rmSync(broken);
    }
  });

  test('an unreachable instance gets a clear error, the others proceed, exit 1', async () => {
    const ghost = join(ws.dir, 'dbbackup.29998.ini');
    writeFileSync(ghost, `[Public]\nMysqlHost = 127.0.0.1\nMysqlPort = 29998\nMysqlUser = u\nMysqlPasswd = ${ADMIN_PASSWORD}\n`);
    await insertTasks(cluster, [{ backupId: 'down-1', for: m0 }]);
    const r = await ws.cli('check', '--run', '-c', `${ghost},${ws.dropIn(m0)}`);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /127\.0\.0\.1:29998: connect ECONNREFUSED/);
    assert.equal(await statusOf(cluster, m0, 'down-1'), 'success');
    assert.ok(!r.stderr.includes(ADMIN_PASSWORD) && !r.stdout.includes(ADMIN_PASSWORD));
  });

  test('a stopped master: its error is reported, the replica is still served', async () => {
    const slave = cluster.slaves[0] as Cluster['slaves'][number];
    await insertTasks(cluster, [
      { backupId: 'stop-1', for: slave },
      { backupId: 'stop-1', for: m1 },
    ]);
    await cluster.stop(m1);
    try {
      const slaveIni = ws.iniFile(slave);
      const r = await ws.cli('check', '--run', '-c', `${slaveIni},${ws.dropIn(m1)}`);
      assert.equal(r.code, 1);
      assert.match(r.stdout, new RegExp(`127\\.0\\.0\\.1:${m1.port}`));
      assert.equal(await statusOf(cluster, slave, 'stop-1', slave), 'success');
    } finally {
      await cluster.start(m1);
    }
  });
});

describe('usage', () => {
  test('check --help documents every flag', async () => {
    const r = await ws.cli('check', '--help');
    for (const flag of ['--run', '--backup-id <id>', '-c, --config <files>', '--format <format>', '--agent-config <file>'])
      assert.ok(r.stdout.includes(flag), flag);
    assert.equal(r.code, 0);
    const bad = await ws.cli('check', '--bogus');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown option '--bogus'/);
    const badId = await ws.cli('check', '--backup-id', 'a;b');
    assert.equal(badId.code, 2);
    assert.match(badId.stderr, /--backup-id "a;b": must be 1-40 characters/);
  });
});
