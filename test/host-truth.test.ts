// The host is the truth (SPEC §5): whatever replication, operators or crashes do to the rows, a host
// never runs two backups at once, a quit kills everything of a backup, and no result is lost.
// Real cluster (two masters, a replica of masters[0], a Spider node, binlog_format=ROW on the
// masters), the real CLI and daemon, real processes and signals.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Instance } from '../src/sandbox/cluster.js';
import { byPort, setUpCluster, type TestCluster, type ClusterWorkspace } from './support/cluster.js';
import { insertTasks, statusOf, taskOf } from './support/tasks.js';
import { pidAlive, waitFor, Workspace, type Run } from './support/workspace.js';

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let p0: Instance;
let p1: Instance;
let slave: Instance;
const ini = (inst: Instance) => ws.dropIn(inst);

before(async () => {
  // Row images: an UPDATE of a master-side row replicates as a whole row over the replica's own.
  cluster = await setUpCluster({ shards: 2, slaves: [0], binlogFormat: 'ROW', workspaces: { ws: { serves: ['master0', 'master1'] } } });
  ({ ws } = cluster.workspaces);
  [p0, p1] = byPort(cluster.masters) as [Instance, Instance];
  slave = cluster.slaves[0] as Instance;
});

after(() => cluster?.close());

beforeEach(() => cluster.reset());

const runOf = (port: number, backupId: string): Promise<Run> =>
  waitFor(`the backup ${backupId}@${port} to start`, () => ws.runs().find((r) => r.port === port && r.backupId === backupId));
const noOverlap = () => {
  for (const r of ws.runs()) assert.deepEqual(r.concurrent, [], `${r.backupId}@${r.port} started while another backup of the host ran`);
};
/** Releases every blocked backup and kills what a test left behind, so a failure never hangs the suite. */
async function cleanUp(...ports: number[]): Promise<void> {
  for (const p of ports) ws.release(p);
  for (const r of ws.runs()) {
    for (const pid of [r.pid, r.grandchild]) {
      if (pid !== undefined && pidAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  }
}

describe('what replication and operators write over a running row', () => {
  test(
    'a whole backup id cancelled through the Spider node (ROW binlog): the replica backup is killed, its row quit: success, the next ' +
      'backup only after it',
    { timeout: 120_000 },
    async () => {
      const slaveIni = ws.iniFile(slave);
      await insertTasks(cluster, [{ backupId: 'cancel-A', for: slave }]);
      ws.behave(slave.port, { block: true, grandchild: true });
      const first = ws.start(['check', '--run', '-c', slaveIni]);
      try {
        const run = await runOf(slave.port, 'cancel-A');
        await insertTasks(cluster, [{ backupId: 'cancel-B', for: slave, createdAgoS: 0 }]);
        // The natural hand-written cancel, on the spider node: it rewrites the master's copy of the
        // replica's row, and replication carries that image over the replica's running row.
        await cluster.exec(
          cluster.spider,
          "UPDATE infodba_schema.global_backup SET BackupStatus = 'quit' WHERE BackupId = 'cancel-A' AND BackupStatus IN ('running', " +
            "'init', 'replicated')",
        );
        await cluster.waitReplicated();
        const overwritten = await taskOf(cluster, slave, 'cancel-A', slave);
        assert.deepEqual([overwritten?.BackupStatus, overwritten?.TaskPid], ['quit', -1], 'the row image overwrote the replica row');
        ws.behave(slave.port, {});
        const second = await ws.cli('check', '--run', '-c', slaveIni);
        assert.equal(second.code, 0, second.stderr);
        assert.equal(await statusOf(cluster, slave, 'cancel-A', slave), 'quit: success');
        assert.ok(!pidAlive(run.pid) && !pidAlive(run.grandchild as number), 'every process of the cancelled backup is gone');
        assert.equal(await statusOf(cluster, slave, 'cancel-B', slave), 'success', 'the next backup ran after it');
        noOverlap();
        await first.result;
      } finally {
        await cleanUp(slave.port);
        first.child.kill('SIGKILL');
      }
    },
  );

  test(
    'any other status written over a row whose backup runs here is restored to running with the real pid',
    { timeout: 120_000 },
    async () => {
      await insertTasks(cluster, [{ backupId: 'repair-1', for: p0 }]);
      ws.behave(p0.port, { block: true });
      const first = ws.start(['check', '--run', '-c', ini(p0)]);
      try {
        await runOf(p0.port, 'repair-1');
        const supervisor = (await taskOf(cluster, p0, 'repair-1'))?.TaskPid as number;
        assert.ok(supervisor > 0, 'the claim carries the supervisor pid');
        await cluster.exec(
          p0,
          "UPDATE infodba_schema.global_backup SET BackupStatus = 'failed: process does not exist', TaskPid = -1 WHERE BackupId = " +
            "'repair-1'",
        );
        const r = await ws.cli('check', '--run', '-c', ini(p0));
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(
          [(await taskOf(cluster, p0, 'repair-1'))?.BackupStatus, (await taskOf(cluster, p0, 'repair-1'))?.TaskPid],
          ['running', supervisor],
        );
        assert.match(r.stderr, /restored to running with its real pid/);
        ws.release(p0.port);
        assert.equal((await first.result).code, 0);
        assert.equal(await statusOf(cluster, p0, 'repair-1'), 'success', 'the real exit code decides');
      } finally {
        await cleanUp(p0.port);
      }
    },
  );
});

describe('timeout', () => {
  test(
    'a backup of ours running over 48 h: everything of it killed, failed: timeout, not overwritten by its supervisor',
    { timeout: 120_000 },
    async () => {
      await insertTasks(cluster, [{ backupId: 'slow-1', for: p0 }]);
      ws.behave(p0.port, { block: true, grandchild: true });
      const first = ws.start(['check', '--run', '-c', ini(p0)]);
      try {
        const run = await runOf(p0.port, 'slow-1');
        const supervisor = (await taskOf(cluster, p0, 'slow-1'))?.TaskPid as number;
        await cluster.exec(p0, "UPDATE infodba_schema.global_backup SET UpdatedAt = NOW() - INTERVAL 49 HOUR WHERE BackupId = 'slow-1'");
        const r = await ws.cli('check', '--run', '-c', ini(p0));
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await statusOf(cluster, p0, 'slow-1'), 'failed: timeout');
        for (const pid of [supervisor, run.pid, run.grandchild as number]) assert.ok(!pidAlive(pid), `pid ${pid} killed`);
        await first.result;
        assert.equal(await statusOf(cluster, p0, 'slow-1'), 'failed: timeout');
      } finally {
        await cleanUp(p0.port);
      }
    },
  );
});

describe('crashes', () => {
  test(
    'supervisor killed -9 while its backup runs: the backup is killed, failed: supervisor died, the next instance only after',
    { timeout: 120_000 },
    async () => {
      await insertTasks(cluster, [
        { backupId: 'orphan-1', for: p0 },
        { backupId: 'orphan-1', for: p1 },
      ]);
      ws.behave(p0.port, { block: true });
      const first = ws.start(['check', '--run']);
      try {
        const run = await runOf(p0.port, 'orphan-1');
        const supervisor = (await taskOf(cluster, p0, 'orphan-1'))?.TaskPid as number;
        process.kill(supervisor, 'SIGKILL');
        await waitFor('the supervisor to die', () => !pidAlive(supervisor));
        // The first runner sees its supervisor end and tries the next instance: the orphan still
        // holds the host lock, so nothing starts beside it.
        await first.result;
        assert.equal(ws.runs().length, 1, 'nothing started beside the orphaned backup');
        const r = await ws.cli('check', '--run');
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await statusOf(cluster, p0, 'orphan-1'), 'failed: supervisor died');
        assert.ok(!pidAlive(run.pid), 'the orphaned backup was killed');
        assert.equal(await statusOf(cluster, p1, 'orphan-1'), 'success');
        noOverlap();
      } finally {
        await cleanUp(p0.port);
      }
    },
  );

  test(
    'the database dies mid-backup: nothing else starts; the status is delivered once after its restart',
    { timeout: 180_000 },
    async () => {
      await insertTasks(cluster, [
        { backupId: 'down-1', for: p0 },
        { backupId: 'down-1', for: p1 },
      ]);
      ws.behave(p0.port, { block: true });
      const first = ws.start(['check', '--run', '-c', ini(p0)]);
      let stopped = false;
      try {
        await runOf(p0.port, 'down-1');
        await cluster.stop(p0);
        stopped = true;
        const r = await ws.cli('check', '--run');
        assert.equal(r.code, 1, 'the stopped instance is an error');
        assert.equal(ws.runs().length, 1, 'the other instance did not start beside the running backup');
        assert.match(r.stdout, /Nothing started: backup down-1@.* runs \(supervisor pid/);
        ws.release(p0.port);
        await first.result; // the supervisor journals the result it cannot write
        await cluster.start(p0);
        stopped = false;
        const again = await ws.cli('check', '--run');
        assert.equal(again.code, 0, again.stderr);
        assert.equal(await statusOf(cluster, p0, 'down-1'), 'success');
        assert.equal((again.stderr.match(/journaled final status delivered/g) ?? []).length, 1);
        assert.equal(await statusOf(cluster, p1, 'down-1'), 'success');
        noOverlap();
      } finally {
        await cleanUp(p0.port);
        if (stopped) await cluster.start(p0);
      }
    },
  );

  for (const kind of ['full', 'read-only'] as const) {
    test(`state_dir on a ${kind} file system: a backup that exited 0 is still recorded success`, { timeout: 120_000 }, async (t) => {
      const mnt = join(ws.dir, `state-${kind}`);
      mkdirSync(mnt, { recursive: true });
      const opts = kind === 'full' ? 'size=64k' : 'size=64k,ro';
      const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'none', mnt]);
      if (mount.status !== 0) {
        t.skip(`cannot mount a tmpfs here: ${mount.stderr.toString()}`);
        return;
      }
      try {
        if (kind === 'full') spawnSync('dd', ['if=/dev/zero', `of=${join(mnt, 'fill')}`, 'bs=4k', 'count=1000']);
        const w = cluster.workspace({ config: { agent: { state_dir: mnt } }, serves: [p0] });
        try {
          await insertTasks(cluster, [{ backupId: `sd-${kind}`, for: p0 }]);
          const r = await w.cli('check', '--run');
          assert.equal(await statusOf(cluster, p0, `sd-${kind}`), 'success', r.stderr);
          assert.match(r.stderr, /cannot write the local journal/);
        } finally {
          w.close();
        }
      } finally {
        spawnSync('umount', ['-l', mnt]);
      }
    });
  }
});

describe('concurrent runners', () => {
  test('the daemon and a hand-run check --run: one backup at a time, each task once', { timeout: 180_000 }, async () => {
    await insertTasks(cluster, [
      { backupId: 'conc-A', for: p0 },
      { backupId: 'conc-A', for: p1 },
      { backupId: 'conc-B', for: p0, createdAgoS: 0 },
      { backupId: 'conc-B', for: p1, createdAgoS: 0 },
    ]);
    ws.behave(p0.port, { block: true });
    const daemon = ws.start(['daemon']);
    try {
      await runOf(p0.port, 'conc-A');
      const [a, b] = await Promise.all([ws.cli('check', '--run'), ws.cli('check', '--run')]);
      assert.ok(a.code === 0 && b.code === 0, a.stderr + b.stderr);
      assert.equal(ws.runs().length, 1, 'nothing started beside the running backup');
      ws.release(p0.port);
      await waitFor(
        'all four tasks to succeed',
        async () =>
          (await Promise.all([p0, p1].flatMap((i) => ['conc-A', 'conc-B'].map((id) => statusOf(cluster, i, id))))).every(
            (s) => s === 'success',
          ),
        60_000,
      );
      const runs = ws
        .runs()
        .map((r) => `${r.backupId}@${r.port}`)
        .sort();
      assert.deepEqual(
        runs,
        [`conc-A@${p0.port}`, `conc-A@${p1.port}`, `conc-B@${p0.port}`, `conc-B@${p1.port}`].sort(),
        'each task exactly once',
      );
      noOverlap();
    } finally {
      await cleanUp(p0.port);
      daemon.child.kill('SIGTERM');
      await daemon.result;
    }
  });

  test('a second daemon with another state_dir is refused, naming the first', { timeout: 60_000 }, async () => {
    const w1 = new Workspace();
    const w2 = new Workspace({ agent: { host_lock: w1.hostLock } });
    const daemon = w1.start(['daemon']);
    try {
      await waitFor('the first daemon to be up', () => existsSync(join(w1.stateDir, 'status.json')));
      const r = await w2.cli('daemon');
      assert.equal(r.code, 1);
      assert.ok(
        r.stderr.includes(
          `another spiderbackup daemon runs on this host (pid ${daemon.child.pid}, agent config ${w1.agentIni}, state_dir ${w1.stateDir}`,
        ),
        r.stderr,
      );
    } finally {
      daemon.child.kill('SIGTERM');
      await daemon.result;
      w1.close();
      w2.close();
    }
  });
});

describe('what a backup leaves behind, and any id', () => {
  test(
    'quit kills a double-forked helper that left the tree and the group: quit: success only when nothing survives',
    { timeout: 120_000 },
    async () => {
      await insertTasks(cluster, [{ backupId: 'fork-1', for: p0 }]);
      ws.behave(p0.port, { block: true, doubleFork: true });
      const first = ws.start(['check', '--run', '-c', ini(p0)]);
      try {
        const run = await runOf(p0.port, 'fork-1').catch(async (err: unknown) => {
          first.child.kill('SIGKILL');
          throw new Error(`${(err as Error).message}\n${(await first.result).stderr}`);
        });
        assert.ok(run.grandchild !== undefined && pidAlive(run.grandchild));
        await cluster.exec(p0, "UPDATE infodba_schema.global_backup SET BackupStatus = 'quit' WHERE BackupId = 'fork-1'");
        const r = await ws.cli('check', '--run', '-c', ini(p0));
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await statusOf(cluster, p0, 'fork-1'), 'quit: success');
        assert.ok(!pidAlive(run.pid) && !pidAlive(run.grandchild as number), 'the helper was killed too');
        await first.result;
      } finally {
        await cleanUp(p0.port);
      }
    },
  );

  test('a helper left running after the backup exits is terminated with it, so the host is free again', { timeout: 120_000 }, async () => {
    await insertTasks(cluster, [
      { backupId: 'left-1', for: p0 },
      { backupId: 'left-1', for: p1 },
    ]);
    ws.behave(p0.port, { doubleFork: true });
    try {
      const r = await ws.cli('check', '--run');
      assert.equal(r.code, 0, r.stderr);
      const run = ws.runs()[0] as Run;
      assert.ok(!pidAlive(run.grandchild as number), 'the left-over helper is gone');
      assert.equal(await statusOf(cluster, p1, 'left-1'), 'success');
      assert.match(r.stderr, /left processes behind/);
    } finally {
      await cleanUp();
    }
  });

  // The longest id the table holds, with every character schedule allows besides a leading '-'.
  for (const id of ['-starts-with-dash', '.a_B-9.z_Y-8.x_W-7.v_U-6.t_S-5.r_Q-4.p_O']) {
    test(`backup id ${JSON.stringify(id)} runs, and a running one is recognised as running`, { timeout: 120_000 }, async () => {
      await insertTasks(cluster, [{ backupId: id, for: p0 }]);
      ws.behave(p0.port, { block: true });
      const first = ws.start(['check', '--run', '-c', ini(p0)]);
      try {
        await runOf(p0.port, id);
        const r = await ws.cli('check', '--run', '-c', ini(p0));
        assert.equal(r.code, 0, r.stderr);
        assert.equal(await statusOf(cluster, p0, id), 'running', 'not mistaken for a recycled pid');
        ws.release(p0.port);
        assert.equal((await first.result).code, 0);
        assert.equal(await statusOf(cluster, p0, id), 'success');
      } finally {
        await cleanUp(p0.port);
      }
    });
  }

  test(
    'a backup id schedule would refuse (non-ASCII, written by hand) is ended failed: invalid backup id, never run',
    { timeout: 60_000 },
    async () => {
      const id = 'ünïcødé-備份-ﾊﾞｯｸｱｯﾌﾟ';
      await insertTasks(cluster, [{ backupId: id, for: p0 }]);
      try {
        const r = await ws.cli('check', '--run', '-c', ini(p0));
        assert.equal(await statusOf(cluster, p0, id), 'failed: invalid backup id', r.stderr);
        assert.equal(ws.runs().filter((x) => x.backupId === id).length, 0, 'nothing was started');
      } finally {
        await cleanUp(p0.port);
      }
    },
  );

  test(
    'a backup of the old tool on this host (mysql-crond during a migration): nothing starts beside it, and check says why',
    { timeout: 60_000 },
    async () => {
      const bin = join(ws.dir, 'legacy');
      mkdirSync(bin, { recursive: true });
      const dbbackup = join(bin, 'dbbackup');
      writeFileSync(dbbackup, `#!${process.execPath}\nsetInterval(() => {}, 1000);\n`);
      chmodSync(dbbackup, 0o755);
      const legacy = spawn(dbbackup, ['dumpbackup', '--config', '/x/dbbackup.20000.ini'], { stdio: 'ignore' });
      try {
        await waitFor('the old tool to run', () => pidAlive(legacy.pid as number));
        await insertTasks(cluster, [{ backupId: 'legacy-1', for: p0 }]);
        const r = await ws.cli('check', '--run');
        assert.equal(ws.runs().length, 0, 'nothing started beside the old tool');
        assert.equal(await statusOf(cluster, p0, 'legacy-1'), 'init');
        assert.match(r.stderr, /a backup of the old tool runs on this host/);
      } finally {
        legacy.kill('SIGKILL');
      }
      const r = await ws.cli('check', '--run');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await statusOf(cluster, p0, 'legacy-1'), 'success');
    },
  );
});

describe('permissions', () => {
  test('a user that may not purge or SET sql_log_bin still gets its backup', { timeout: 60_000 }, async () => {
    const m = cluster.masterOf(slave);
    await cluster.exec(m, "CREATE USER IF NOT EXISTS 'sblimited'@'%' IDENTIFIED BY 'limited-pw'");
    await cluster.exec(m, "GRANT SELECT, UPDATE ON infodba_schema.* TO 'sblimited'@'%'");
    const w = cluster.workspace({ serves: [m], ini: { MysqlUser: 'sblimited', MysqlPasswd: 'limited-pw' } });
    try {
      await insertTasks(cluster, [
        { backupId: 'limited-1', for: m },
        { backupId: 'ancient', for: m, status: 'success', createdAgoS: 40 * 86400 },
      ]);
      const r = await w.cli('check', '--run');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await statusOf(cluster, m, 'limited-1'), 'success');
      assert.match(r.stderr, /cannot delete old rows \(backups are not affected\)/);
    } finally {
      w.close();
    }
  });
});

describe('passwords with ; and #', () => {
  test(
    'a password with ; and # works quoted with backticks; unquoted, the error names the cut, never the password',
    { timeout: 60_000 },
    async () => {
      const m = cluster.masterOf(slave);
      const password = 'pa;ss#wo rd';
      await cluster.exec(m, "CREATE USER IF NOT EXISTS 'sbsemicolon'@'%' IDENTIFIED BY ?", [password]);
      await cluster.exec(m, "GRANT SELECT, UPDATE ON infodba_schema.* TO 'sbsemicolon'@'%'");
      const w = cluster.workspace({ serves: [m], ini: { MysqlUser: 'sbsemicolon' } });
      try {
        const file = w.dropIn(m);
        const withPassword = (value: string) =>
          writeFileSync(file, readFileSync(file, 'utf8').replace(/^MysqlPasswd = .*$/m, `MysqlPasswd = ${value}`));
        withPassword(`\`${password}\``);
        await insertTasks(cluster, [{ backupId: 'pw-1', for: m }]);
        const ok = await w.cli('check', '--run');
        assert.equal(ok.code, 0, ok.stderr);
        assert.equal(await statusOf(cluster, m, 'pw-1'), 'success');
        withPassword(password);
        const bad = await w.cli('check', '--run');
        assert.equal(bad.code, 1);
        assert.match(bad.stderr + bad.stdout, /Access denied.*MysqlPasswd contains an unquoted ';'/);
        assert.ok(!(bad.stderr + bad.stdout).includes('ss#wo'), 'the password is never shown');
      } finally {
        w.close();
      }
    },
  );
});

describe('backoff', () => {
  test('a task its supervisor cannot claim is retried with backoff, not respawned every tick', { timeout: 120_000 }, async () => {
    const m = cluster.masterOf(slave);
    await cluster.exec(m, "CREATE USER IF NOT EXISTS 'sbreadonly'@'%' IDENTIFIED BY 'ro-pw'");
    await cluster.exec(m, "GRANT SELECT ON infodba_schema.* TO 'sbreadonly'@'%'");
    const w = cluster.workspace({
      config: { agent: { tick_interval: '500ms' } },
      serves: [m],
      ini: { MysqlUser: 'sbreadonly', MysqlPasswd: 'ro-pw' },
    });
    await insertTasks(cluster, [{ backupId: 'storm-1', for: m }]);
    const daemon = w.start(['daemon']);
    try {
      await waitFor('the first failed start', () => /backup not started; trying again later/.test(daemon.stdout()));
      // 8 ticks at 500 ms go by; the first retry is due only 10 s after the failure.
      await new Promise((r) => setTimeout(r, 4000));
      assert.equal((daemon.stdout().match(/backup not started; trying again later/g) ?? []).length, 1, 'one attempt, then backing off');
      assert.equal(await statusOf(cluster, m, 'storm-1'), 'init');
      assert.equal(w.runs().length, 0);
    } finally {
      daemon.child.kill('SIGTERM');
      await daemon.result;
      w.close();
    }
  });
});

describe('kept connections', () => {
  test('the daemon keeps one connection per instance and opens a new one after the instance restarts', { timeout: 180_000 }, async () => {
    const w = cluster.workspace({ config: { agent: { tick_interval: '300ms' } }, serves: [p1] });
    const daemon = w.start(['daemon']);
    let stopped = false;
    try {
      await waitFor('the daemon to be up', () => existsSync(join(w.stateDir, 'status.json')));
      await cluster.stop(p1);
      stopped = true;
      await waitFor('the daemon to see the instance down', () => /instance skipped this round/.test(daemon.stdout()));
      await cluster.start(p1);
      stopped = false;
      await insertTasks(cluster, [{ backupId: 'reconnect-1', for: p1 }]);
      await waitFor('the task to run after the restart', async () => (await statusOf(cluster, p1, 'reconnect-1')) === 'success', 60_000);
      assert.match(daemon.stdout(), /problem cleared/);
    } finally {
      if (stopped) await cluster.start(p1);
      daemon.child.kill('SIGTERM');
      await daemon.result;
      w.close();
    }
  });
});

describe('presence', () => {
  test(
    'every tick the agent announces itself on each instance it serves: version, host, pid, pause, running task',
    { timeout: 120_000 },
    async () => {
      const w = cluster.workspace({ config: { agent: { tick_interval: '300ms' } }, serves: [p0, slave] });
      const daemon = w.start(['daemon']);
      type Row = { Host: string; Port: number; AgentVersion: string; AgentPid: number; Paused: number; PauseReason: string; AgeS: number };
      const presence = async (on: Instance) =>
        (
          await cluster
            .query<Row>(
              on,
              'SELECT Host, Port, AgentVersion, AgentPid, Paused, PauseReason, TIMESTAMPDIFF(SECOND, LastTick, NOW()) AS AgeS ' +
                'FROM infodba_schema.spiderbackup_presence WHERE Host = ? AND Port = ?',
              [on.host, on.port],
            )
            .catch(() => [])
        )[0];
      try {
        const version = (JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { version: string }).version;
        for (const inst of [p0, slave]) {
          // An earlier test's daemon may have served this instance: wait for this one's row.
          const row = await waitFor(`the presence of ${inst.port}`, async () => {
            const r = await presence(inst);
            return r?.AgentPid === daemon.child.pid ? r : undefined;
          });
          assert.equal(row.AgentVersion, version);
          assert.equal(row.Paused, 0);
          assert.ok(Number(row.AgeS) <= 2, `fresh by the database clock (${row.AgeS} s)`);
        }
        const paused = await w.cli('pause', '--for', '1h', '--reason', 'disk swap');
        assert.equal(paused.code, 0, paused.stderr);
        await waitFor('the pause to be announced', async () => (await presence(p0))?.PauseReason === 'disk swap');
      } finally {
        daemon.child.kill('SIGTERM');
        await daemon.result;
        w.close();
      }
    },
  );
});

describe('logs', () => {
  test('logrotate while a backup runs: its supervisor follows, and logs --backup-id finds every line', { timeout: 120_000 }, async () => {
    const w = cluster.workspace({ config: { log: { file: 'agent.log' } }, serves: [p0] });
    const log = join(w.dir, 'agent.log');
    const conf = join(w.dir, 'logrotate.conf');
    writeFileSync(conf, `${log} {\n  rotate 3\n  create\n  missingok\n}\n`);
    await insertTasks(cluster, [{ backupId: 'rot-1', for: p0 }]);
    w.behave(p0.port, { block: true });
    const first = w.start(['check', '--run']);
    try {
      await waitFor('the backup to start', () => w.runs().length === 1);
      const rotated = spawnSync('logrotate', ['-f', '-s', join(w.dir, 'logrotate.state'), conf], { encoding: 'utf8' });
      assert.equal(rotated.status, 0, rotated.stderr);
      w.release(p0.port);
      assert.equal((await first.result).code, 0);
      const current = spawnSync('grep', ['-c', 'backup finished', log], { encoding: 'utf8' });
      assert.equal(current.stdout.trim(), '1', 'the last lines of the backup are in the new file, not in agent.log.1');
      const r = await w.cli('logs', '--backup-id', 'rot-1', '--json');
      const msgs = r.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { msg: string }).msg);
      assert.ok(msgs.includes('backup started') && msgs.includes('backup finished'), msgs.join(' | '));
    } finally {
      w.release(p0.port);
      first.child.kill('SIGKILL');
      w.close();
    }
  });
});
