// No silent partial answer (issue 17 item 1) on a real cluster: one shard with a replica, a Spider
// node, the tdbctl stand-in, one real backup. With the replica's task table out of reach (renamed
// there, outside its binlog), every spider-side command that needs it exits non-zero naming the
// replica and the server's error, and still shows the rest; JSON stays JSON. With it back, exit 0.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { insertTasks } from './support/tasks.js';
import { DaemonProcess } from './support/daemon.js';

const ID = 'pa-1';
const WAITING = 'pa-wait';

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let m0: Instance;
let s0: Instance;
let spiderIni: string;
let daemon: DaemonProcess;

before(async () => {
  cluster = await setUpCluster({
    shards: 1,
    slaves: [0],
    tdbctl: true,
    workspaces: { ws: { serves: ['master0', 'slave0', 'spider0'], config: { backup: { runner: 'mariadb-dump' } } } },
  });
  ({ ws } = cluster.workspaces);
  m0 = cluster.masters[0] as Instance;
  s0 = cluster.slaves[0] as Instance;
  spiderIni = ws.dropIn(cluster.spider);
  // One real backup (spider node, master, replica), then a restore point after it; then the host
  // is paused, so that its agents stay alive (status --cluster) and leave new tasks waiting.
  daemon = new DaemonProcess(ws);
  await daemon.ready();
  const s = await ws.cli('schedule', '-c', spiderIni, '--backup-id', ID, '--wait');
  assert.equal(s.code, 0, s.stdout + s.stderr);
  const p = await ws.cli('restore-point', 'pa-point', '-c', spiderIni);
  assert.equal(p.code, 0, p.stdout + p.stderr);
  assert.equal((await ws.cli('pause', '--for', '1h', '--reason', 'partial answers')).code, 0);
  await daemon.ticks(2);
});

after(async () => {
  await daemon?.dispose();
  await cluster?.close();
});

const cli = (...args: string[]) => ws.cli(...args, '-c', spiderIni);

/** The replica's task table renamed on the replica alone (kept out of its binlog). */
async function withReplicaTableGone<T>(fn: () => Promise<T>): Promise<T> {
  const c = await mysql.createConnection({ socketPath: s0.socket, user: 'root' });
  try {
    await c.query('SET SESSION sql_log_bin = 0');
    await c.query('RENAME TABLE infodba_schema.global_backup TO infodba_schema.global_backup_away');
    try {
      return await fn();
    } finally {
      await c.query('RENAME TABLE infodba_schema.global_backup_away TO infodba_schema.global_backup');
      // A change that replicated meanwhile (cancel's) stopped the replica's SQL thread: resume it.
      await c.query('START SLAVE');
      await cluster.waitReplicated();
    }
  } finally {
    await c.end();
  }
}

const replicaNamed = (stderr: string) => {
  assert.match(stderr, new RegExp(`SPT_SLAVE0 ${s0.host}:${s0.port}`), stderr);
  // The server's own words: MariaDB's "Table … doesn't exist".
  assert.match(stderr, /infodba_schema\.global_backup' doesn't exist/, stderr);
};

describe('a replica whose task table cannot be read', { timeout: 300_000 }, () => {
  test('query, list, verify, restore-plan, status --cluster and cancel exit 1 naming it; the rest is still shown', async () => {
    await insertTasks(cluster, [
      { backupId: WAITING, for: m0 },
      { backupId: WAITING, for: s0 },
    ]);
    await withReplicaTableGone(async () => {
      const q = await cli('query', '--BackupId', ID);
      assert.equal(q.code, 1, q.stdout + q.stderr);
      replicaNamed(q.stderr);
      assert.match(q.stdout, /^2 rows$/m, q.stdout);
      assert.match(q.stderr, /2 rows shown without it/, q.stderr);
      const qj = await cli('query', '--BackupId', ID, '--format', 'json');
      assert.equal(qj.code, 1);
      assert.equal((JSON.parse(qj.stdout) as unknown[]).length, 2);
      replicaNamed(qj.stderr);

      const l = await cli('list');
      assert.equal(l.code, 1, l.stdout + l.stderr);
      replicaNamed(l.stderr);
      assert.match(l.stdout, new RegExp(`^${ID} +unknown`, 'm'), l.stdout);
      const lj = await cli('list', '--format', 'json');
      assert.equal(lj.code, 1);
      assert.equal((JSON.parse(lj.stdout) as { backupId: string; unknown: number }[]).find((b) => b.backupId === ID)?.unknown, 1);
      replicaNamed(lj.stderr);

      const v = await cli('verify', ID);
      assert.equal(v.code, 1, v.stdout + v.stderr);
      replicaNamed(v.stderr);
      assert.match(v.stdout, /^ok +SPT0 /m, v.stdout);
      assert.doesNotMatch(v.stdout, /all \d+ instances verified/, v.stdout);
      assert.match(v.stdout, /2 instances verified; not verified: SPT_SLAVE0 /, v.stdout);

      const rp = await cli('restore-plan', ID, '--to-point', 'pa-point');
      assert.equal(rp.code, 1, rp.stdout + rp.stderr);
      replicaNamed(rp.stderr);
      assert.match(rp.stdout, /restore the master's backup/, rp.stdout);
      const rpj = await cli('restore-plan', ID, '--to-point', 'pa-point', '--format', 'json');
      assert.equal(rpj.code, 1);
      const plan = JSON.parse(rpj.stdout) as { ok: boolean; problems: string[]; shards: unknown[] };
      assert.equal(plan.ok, false);
      assert.equal(plan.shards.length, 1);
      assert.ok(
        plan.problems.some((p) => p.includes(`SPT_SLAVE0 ${s0.host}:${s0.port}`)),
        JSON.stringify(plan.problems),
      );
      replicaNamed(rpj.stderr);

      const st = await cli('status', '--cluster');
      assert.equal(st.code, 1, st.stdout + st.stderr);
      replicaNamed(st.stderr);
      assert.match(st.stdout, /SPT0/, st.stdout);
      const stj = await cli('status', '--cluster', '--format', 'json');
      assert.equal(stj.code, 1);
      const cs = JSON.parse(stj.stdout) as { ok: boolean; instances: { port: number; problems: string[] }[] };
      assert.equal(cs.ok, false);
      assert.equal(cs.instances.length, 3);
      assert.ok(
        cs.instances.find((i) => i.port === s0.port)?.problems.some((p) => /doesn't exist/.test(p)),
        JSON.stringify(cs.instances),
      );
      replicaNamed(stj.stderr);

      const c = await cli('cancel', WAITING);
      assert.equal(c.code, 1, c.stdout + c.stderr);
      replicaNamed(c.stderr);
      assert.match(c.stdout, /SPT0 .*not started; will never start/, c.stdout);
    });
  });

  test('with everything readable, the same commands exit 0', async () => {
    const runs: [string, string[]][] = [
      ['query', ['query', '--BackupId', ID]],
      ['query json', ['query', '--BackupId', ID, '--format', 'json']],
      ['list', ['list']],
      ['list json', ['list', '--format', 'json']],
      ['verify', ['verify', ID]],
      ['restore-plan', ['restore-plan', ID, '--to-point', 'pa-point']],
      ['restore-plan json', ['restore-plan', ID, '--to-point', 'pa-point', '--format', 'json']],
      ['status --cluster', ['status', '--cluster']],
      ['status --cluster json', ['status', '--cluster', '--format', 'json']],
    ];
    for (const [what, args] of runs) {
      const r = await cli(...args);
      assert.equal(r.code, 0, `${what}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stderr, '', what);
      if (args.includes('json')) JSON.parse(r.stdout);
    }
    const q = await cli('query', '--BackupId', ID, '--format', 'json');
    assert.equal((JSON.parse(q.stdout) as unknown[]).length, 3);
    await insertTasks(cluster, [
      { backupId: 'pa-wait2', for: m0 },
      { backupId: 'pa-wait2', for: s0 },
    ]);
    const c = await cli('cancel', 'pa-wait2');
    assert.equal(c.code, 0, c.stdout + c.stderr);
  });
});

describe('a spider node that is not the primary', { timeout: 300_000 }, () => {
  test('query, list, verify and restore-plan answer from the shard masters, saying so on stderr (JSON intact); cancel acts; schedule exits 0 naming the primary', async () => {
    await insertTasks(cluster, [{ backupId: 'np-wait', for: m0 }]);
    const ctl = cluster.tdbctlNode as Instance;
    const primary = `the primary is tdbctl TDBCTL0 ${ctl.host}:${ctl.port}, its spider node SPIDER0 ${cluster.spider.host}:${cluster.spider.port}`;
    const runs = [
      ['query'],
      ['query', '--format', 'json'],
      ['list', '--format', 'json'],
      ['verify', ID],
      ['restore-plan', ID, '--to-point', 'pa-point', '--format', 'json'],
    ];
    const onPrimary = [];
    for (const args of runs) onPrimary.push(await cli(...args));
    cluster.tdbctl?.setPrimary(false);
    try {
      for (const [i, args] of runs.entries()) {
        const r = await cli(...args);
        const p = onPrimary[i] as { code: number; stdout: string; stderr: string };
        assert.equal(r.code, p.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
        assert.equal(r.code, 0, args.join(' '));
        // The same answer as the primary's; ages move between the two runs.
        const json = (out: string): unknown => JSON.parse(out, (k, v: unknown) => (/AgeS$/.test(k) ? undefined : v));
        if (args.includes('json')) assert.deepEqual(json(r.stdout), json(p.stdout), args.join(' '));
        else assert.equal(r.stdout, p.stdout, args.join(' '));
        assert.equal(
          r.stderr,
          `spiderbackup: ${cluster.spider.host}:${cluster.spider.port} is not the primary spider node (tdbctl get primary): ` +
            `read the shard masters directly (${primary})\n`,
          args.join(' '),
        );
      }
      const c = await cli('cancel', 'np-wait');
      assert.equal(c.code, 0, c.stdout + c.stderr);
      assert.match(c.stdout, /SPT0 .*not started; will never start/, c.stdout);
      const s = await cli('schedule', '--backup-id', 'np-sched');
      assert.equal(s.code, 0, s.stderr);
      assert.ok(s.stdout.includes(primary), s.stdout);
    } finally {
      cluster.tdbctl?.setPrimary(true);
    }
    // The cancel was done: the task will never start; nothing was scheduled.
    const q = await cli('query', '--BackupId', 'np-wait', '--format', 'json');
    assert.deepEqual(
      (JSON.parse(q.stdout) as { BackupStatus: string }[]).map((t) => t.BackupStatus),
      ['quit: no process'],
    );
    const n = await cli('query', '--BackupId', 'np-sched', '--format', 'json');
    assert.deepEqual(JSON.parse(n.stdout), []);
  });
});
