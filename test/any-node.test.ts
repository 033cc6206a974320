// Any spider node answers (issue 17 item 3) on a real cluster: two shards (one with a replica), two
// Spider nodes, the tdbctl stand-in naming SPIDER0 the primary, one real backup and a restore
// point. From SPIDER1 — first a SPIDER node without the task table, then a SPIDER_SLAVE node whose
// own task table holds a row no one else has (what reading through it would show) — query, list,
// verify, restore-plan, restore-point --list, status --cluster and cancel answer as the primary
// does, say on stderr that they read the shard masters directly, and nothing is created on,
// written to or read through SPIDER1; schedule there exits 0 naming the primary, restore-point
// <name> exits 1 naming it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { insertTasks, statusOf } from './support/tasks.js';
import { DaemonProcess } from './support/daemon.js';
import type { CliResult } from './support/workspace.js';

const ID = 'an-1';
const POINT = 'an-point';

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let ws1: ClusterWorkspace;
let m0: Instance;
let m1: Instance;
let s0: Instance;
let sp1: Instance;
let spiderIni: string;
let spider1Ini: string;
let daemon: DaemonProcess;
let primary: string;

before(async () => {
  cluster = await setUpCluster({
    shards: 2,
    slaves: [0],
    spiders: 2,
    tdbctl: true,
    workspaces: { ws: { serves: ['master0', 'master1', 'slave0', 'spider0'], config: { backup: { runner: 'mariadb-dump' } } } },
  });
  ({ ws } = cluster.workspaces);
  [m0, m1] = cluster.masters as [Instance, Instance];
  s0 = cluster.slaves[0] as Instance;
  sp1 = cluster.spiders[1] as Instance;
  spiderIni = ws.dropIn(cluster.spider);
  const ctl = cluster.tdbctlNode as Instance;
  primary = `the primary is tdbctl TDBCTL0 ${ctl.host}:${ctl.port}, its spider node SPIDER0 ${cluster.spider.host}:${cluster.spider.port}`;
  // SPIDER1's host: its tdbctl is the one tdbctl of the cluster (not at its own port + 1000).
  ws1 = cluster.workspace({ config: { schedule: { tdbctl: `${ctl.host}:${ctl.port}` } } });
  spider1Ini = ws1.iniFile(sp1);
  daemon = new DaemonProcess(ws);
  await daemon.ready();
  const s = await ws.cli('schedule', '-c', spiderIni, '--backup-id', ID, '--wait');
  assert.equal(s.code, 0, s.stdout + s.stderr);
  const p = await ws.cli('restore-point', POINT, '-c', spiderIni);
  assert.equal(p.code, 0, p.stdout + p.stderr);
  // Paused from here: agents stay alive (status --cluster) and leave new tasks waiting.
  assert.equal((await ws.cli('pause', '--for', '1h', '--reason', 'any node')).code, 0);
  await daemon.ticks(2);
  // SPIDER1 is a Spider node that was never given the task table.
  await cluster.exec(sp1, 'DROP DATABASE infodba_schema');
});

after(async () => {
  await daemon?.dispose();
  await cluster?.close();
});

/** The same command on the primary (SPIDER0) and on SPIDER1, which tdbctl then says is not the primary. */
async function onBoth(...args: string[]): Promise<{ p: CliResult; n: CliResult }> {
  const p = await ws.cli(...args, '-c', spiderIni);
  const n = await onSpider1(...args);
  return { p, n };
}

async function onSpider1(...args: string[]): Promise<CliResult> {
  cluster.tdbctl?.setPrimary(false);
  try {
    return await ws1.cli(...args, '-c', spider1Ini);
  } finally {
    cluster.tdbctl?.setPrimary(true);
  }
}

const NOTE = () =>
  `spiderbackup: ${sp1.host}:${sp1.port} is not the primary spider node (tdbctl get primary): read the shard masters directly (${primary})\n`;

/** What SPIDER1 holds in infodba_schema, and what was done on it (statements that write or create). */
async function spider1Footprint(): Promise<{ tables: string[]; writes: Record<string, string> }> {
  const tables = await cluster.query<{ t: string; n: number }>(
    sp1,
    "SELECT CONCAT(TABLE_NAME, ' ', ENGINE) AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'infodba_schema' ORDER BY 1",
  );
  const status = await cluster.query<{ Variable_name: string; Value: string }>(
    sp1,
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_insert', 'Com_update', 'Com_delete', 'Com_create_table', 'Com_create_db', " +
      "'Com_replace', 'Com_alter_table')",
  );
  return { tables: tables.map((r) => r.t), writes: Object.fromEntries(status.map((r) => [r.Variable_name, r.Value])) };
}

/** Ages move between two runs; everything else must be equal. */
const withoutAges = (json: string): unknown => JSON.parse(json, (k, v: unknown) => (/ageS$|elapsedS$|^spider$/i.test(k) ? undefined : v));

function sameAnswer(args: string[], p: CliResult, n: CliResult, json = args.includes('json')): void {
  const what = args.join(' ');
  assert.equal(n.code, p.code, `${what}: primary ${p.code} ${p.stderr}; SPIDER1 ${n.code} ${n.stdout}${n.stderr}`);
  if (json) assert.deepEqual(withoutAges(n.stdout), withoutAges(p.stdout), what);
  else assert.equal(n.stdout, p.stdout, what);
  assert.equal(n.stderr, NOTE() + p.stderr, what);
}

describe('a SPIDER node without the task table', { timeout: 300_000 }, () => {
  test('query, list, verify, restore-plan and restore-point --list answer as the primary, reading the shard masters', async () => {
    const before = await spider1Footprint();
    assert.deepEqual(before.tables, []);
    for (const args of [
      ['query'],
      ['query', '--format', 'json'],
      ['query', '--BackupId', ID, '--format', 'json'],
      ['list'],
      ['list', '--format', 'json'],
      ['list', '--latest-complete'],
      ['verify', ID],
      ['restore-plan', ID, '--to-point', POINT],
      ['restore-plan', ID, '--to-point', POINT, '--format', 'json'],
      ['restore-point', '--list', '--format', 'json'],
    ]) {
      const { p, n } = await onBoth(...args);
      assert.equal(p.code, 0, `${args.join(' ')}: ${p.stdout}${p.stderr}`);
      sameAnswer(args, p, n);
    }
    const q = await onSpider1('query', '--BackupId', ID, '--format', 'json');
    assert.equal((JSON.parse(q.stdout) as unknown[]).length, 4); // spider master, 2 shard masters, the replica
    const l = await onSpider1('list', '--latest-complete');
    assert.equal(l.stdout, `${ID}\n`);
    const v = await onSpider1('verify', ID);
    assert.match(v.stdout, /all 4 instances verified/, v.stdout);
    const rp = await onSpider1('restore-point', '--list', '--format', 'json');
    assert.deepEqual(
      (JSON.parse(rp.stdout) as { name: string }[]).map((x) => x.name),
      [POINT, ID], // ID's own, recorded once the backup completed
    );
    assert.deepEqual(await spider1Footprint(), before, 'nothing created on or written to SPIDER1');
  });

  test('status --cluster: SPIDER1 is not a node that "cannot read its tasks"; the answer is the primary\'s', async () => {
    const { p, n } = await onBoth('status', '--cluster', '--format', 'json');
    // Exit 1 on both: SPIDER1 has no agent. Which instances, their states and problems: the same.
    assert.equal(n.code, p.code, n.stdout + n.stderr);
    assert.equal(n.stderr, NOTE() + p.stderr);
    type St = { instances: { serverName: string; port: number; reachable: boolean; agent: { state: string }; problems: string[] }[] };
    const key = (s: St) =>
      s.instances
        .map((i) => ({ serverName: i.serverName, port: i.port, reachable: i.reachable, state: i.agent.state, problems: i.problems }))
        .sort((a, b) => a.port - b.port);
    const seen = key(JSON.parse(n.stdout) as St);
    assert.deepEqual(seen, key(JSON.parse(p.stdout) as St));
    assert.deepEqual(
      seen.map((i) => [i.serverName, i.state, i.problems]).filter(([, state]) => state !== 'paused'),
      [['SPIDER1', 'none', ['no agent has ever announced itself here']]],
    );
  });

  test('schedule exits 0 naming the primary; restore-point <name> exits 1 naming it; nothing is created on SPIDER1', async () => {
    const before = await spider1Footprint();
    const s = await onSpider1('schedule', '--backup-id', 'an-sched');
    assert.equal(s.code, 0, s.stdout + s.stderr);
    assert.ok(s.stdout.includes(`is not the primary spider node (tdbctl get primary); ${primary}; nothing to do.`), s.stdout);
    const r = await onSpider1('restore-point', 'an-point-2');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
    assert.ok(
      r.stderr.includes(`restore-point: ${sp1.host}:${sp1.port} is not the primary spider node (tdbctl get primary); ${primary}`),
      r.stderr,
    );
    const q = await ws.cli('query', '--BackupId', 'an-sched', '--format', 'json', '-c', spiderIni);
    assert.deepEqual(JSON.parse(q.stdout), []);
    assert.deepEqual(await spider1Footprint(), before);
  });
});

describe("a SPIDER_SLAVE node whose own task table is not the cluster's", { timeout: 300_000 }, () => {
  before(async () => {
    // tdbctl lists SPIDER1 as a SPIDER_SLAVE; its own table holds a row only reading through it would show.
    await cluster.exec(cluster.tdbctlNode as Instance, "UPDATE mysql.servers SET Wrapper = 'SPIDER_SLAVE' WHERE Server_name = 'SPIDER1'");
    await cluster.exec(sp1, 'CREATE DATABASE infodba_schema');
    await cluster.exec(sp1, 'CREATE TABLE infodba_schema.global_backup LIKE mysql.servers'); // any shape: never to be read
    await cluster.exec(sp1, "INSERT INTO infodba_schema.global_backup (Server_name, Host) VALUES ('SPT0', 'trap')");
  });

  test('query and list answer as the primary; cancel there stops the tasks on their own instances, as from the primary', async () => {
    const before = await spider1Footprint();
    for (const args of [
      ['query', '--format', 'json'],
      ['list', '--format', 'json'],
      ['restore-point', '--list'],
    ]) {
      const { p, n } = await onBoth(...args);
      assert.equal(p.code, 0, `${args.join(' ')}: ${p.stdout}${p.stderr}`);
      sameAnswer(args, p, n);
    }
    // Two backups waiting alike: one cancelled from the primary, one from SPIDER1.
    for (const id of ['an-c-p', 'an-c-n'])
      await insertTasks(cluster, [
        { backupId: id, for: cluster.spider },
        { backupId: id, for: m0 },
        { backupId: id, for: m1 },
        { backupId: id, for: s0 },
      ]);
    const cp = await ws.cli('cancel', 'an-c-p', '-c', spiderIni);
    const cn = await onSpider1('cancel', 'an-c-n', '--wait');
    assert.equal(cp.code, 0, cp.stdout + cp.stderr);
    assert.equal(cn.code, 0, cn.stdout + cn.stderr);
    assert.ok(cn.stderr.startsWith(NOTE()), cn.stderr);
    const outcome = (out: string) => out.split('\n').filter((l) => /^(│ )?(SPIDER0|SPT)/.test(l.trim()) || /not started/.test(l));
    assert.deepEqual(outcome(cn.stdout.split('outcome per task')[0] as string), outcome(cp.stdout), `${cp.stdout}\n---\n${cn.stdout}`);
    assert.match(cn.stdout, /an-c-n: nothing of it runs any more/, cn.stdout);
    for (const inst of [cluster.spider, m0, m1, s0]) {
      assert.equal(await statusOf(cluster, inst, 'an-c-n'), 'quit: no process', inst.name);
      assert.equal(await statusOf(cluster, inst, 'an-c-p'), 'quit: no process', inst.name);
    }
    // The cancel records, where each agent looks for them: the same instances hold one for either id.
    const recordsOn = async (id: string) => {
      const on: string[] = [];
      for (const inst of [cluster.spider, m0, m1, s0, sp1]) {
        const has = await cluster
          .query(inst, 'SELECT 1 FROM infodba_schema.spiderbackup_cancel WHERE BackupId = ?', [id])
          .then((r) => r.length > 0)
          .catch(() => false);
        if (has) on.push(inst.name);
      }
      return on;
    };
    assert.deepEqual(await recordsOn('an-c-n'), await recordsOn('an-c-p'));
    assert.deepEqual(await recordsOn('an-c-n'), ['spider0', 'master0', 'master1', 'slave0']);
    // list tells both as cancelled, from either node.
    const { p, n } = await onBoth('list', '--format', 'json');
    sameAnswer(['list', 'json'], p, n);
    const states = new Map((JSON.parse(n.stdout) as { backupId: string; state: string }[]).map((b) => [b.backupId, b.state]));
    assert.equal(states.get('an-c-n'), 'cancelled');
    assert.equal(states.get('an-c-p'), 'cancelled');

    assert.deepEqual(await spider1Footprint(), before, 'nothing created on, written to or through SPIDER1');
    const trap = await cluster.query(sp1, 'SELECT Server_name, Host FROM infodba_schema.global_backup');
    assert.deepEqual(trap, [{ Server_name: 'SPT0', Host: 'trap' }]);
  });

  test('with the primary spider node down: query still answers; cancel, which must record there, exits 1 naming it and changes nothing', async () => {
    await insertTasks(cluster, [
      { backupId: 'an-c-down', for: m0 },
      { backupId: 'an-c-down', for: m1 },
    ]);
    const expected = await onSpider1('query', '--BackupId', 'an-c-down', '--format', 'json');
    assert.equal(expected.code, 0, expected.stderr);
    await cluster.stop(cluster.spider);
    try {
      const q = await onSpider1('query', '--BackupId', 'an-c-down', '--format', 'json');
      assert.equal(q.code, 0, q.stdout + q.stderr);
      assert.deepEqual(JSON.parse(q.stdout), JSON.parse(expected.stdout));
      assert.equal(q.stderr, NOTE());
      const c = await onSpider1('cancel', 'an-c-down');
      assert.equal(c.code, 1, c.stdout + c.stderr);
      assert.equal(c.stdout, '');
      assert.ok(
        c.stderr.includes(
          `cannot record the cancel of an-c-down on the primary spider node SPIDER0 ${cluster.spider.host}:${cluster.spider.port}: `,
        ),
        c.stderr,
      );
      assert.match(c.stderr, /; nothing changed\n$/, c.stderr);
    } finally {
      await cluster.start(cluster.spider);
    }
    assert.equal(await statusOf(cluster, m0, 'an-c-down'), 'init');
    assert.equal(await statusOf(cluster, m1, 'an-c-down'), 'init');
  });
});
