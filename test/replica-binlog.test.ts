// Nothing errant on replicas (issue 17 item 2): the real daemon, ticking fast, serves three
// replicas — SPT_SLAVE0 with log_slave_updates ON, SPT_SLAVE1 with it OFF, SPT_SLAVE2 whose agent
// user lacks SUPER and BINLOG ADMIN — and runs one backup (built-in runner) on the first two.
// Read back from each replica's own binary log: the only transactions with the replica's server id
// are the task status writes (which the old tool made there too); the presence, its CREATE TABLE,
// the cluster-pause table and the runner's verdict stay out. Where `SET sql_log_bin` is refused the
// agent writes nothing of its own, says why once, and `status --cluster` says so too.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { DaemonProcess } from './support/daemon.js';
import { insertTasks, taskOf } from './support/tasks.js';
import { waitFor } from './support/workspace.js';

const IDLE_TICKS = 100;
const NO_BINLOG_USER = 'nobinlog';
const NO_BINLOG_PASSWORD = 'N0-binlog-pw';
const REASON = 'not reporting: needs SUPER or BINLOG ADMIN';

let cluster: TestCluster<'ws' | 'op'>;
let s0: Instance, s1: Instance, s2: Instance;
let ws: ClusterWorkspace;
let op: ClusterWorkspace;
let spiderIni: string;
let daemon: DaemonProcess | undefined;

/** One transaction of a binlog: its GTID's server id and the text of its events. */
interface Trx {
  serverId: number;
  gtid: string;
  text: string;
}

async function transactions(inst: Instance): Promise<Trx[]> {
  const logs = await cluster.query<{ Log_name: string }>(inst, 'SHOW BINARY LOGS');
  const out: Trx[] = [];
  for (const { Log_name } of logs) {
    const events = await cluster.query<{ Event_type: string; Server_id: number; Info: string }>(
      inst,
      `SHOW BINLOG EVENTS IN '${Log_name}'`,
    );
    for (const e of events) {
      if (e.Event_type === 'Gtid') out.push({ serverId: Number(e.Server_id), gtid: e.Info, text: '' });
      else if (out.length > 0 && e.Event_type !== 'Gtid_list' && e.Event_type !== 'Binlog_checkpoint') {
        const last = out[out.length - 1] as Trx;
        last.text += ` ${e.Event_type}: ${e.Info}`;
      }
    }
  }
  return out;
}

async function serverId(inst: Instance): Promise<number> {
  const [r] = await cluster.query<{ id: number }>(inst, 'SELECT @@server_id AS id');
  return Number(r?.id);
}

/** The replica's own transactions (its server id) since `skip` of them were there. */
async function own(inst: Instance): Promise<Trx[]> {
  const id = await serverId(inst);
  return (await transactions(inst)).filter((t) => t.serverId === id);
}

const isStatusWrite = (t: Trx): boolean => /global_backup/.test(t.text) && !/spiderbackup_/.test(t.text);
const show = (ts: Trx[]): string => ts.map((t) => `${t.gtid}:${t.text.slice(0, 200)}`).join('\n');

before(async () => {
  cluster = await setUpCluster({
    shards: 3,
    slaves: [0, 1, 2],
    logSlaveUpdates: [0],
    tdbctl: true,
    workspaces: {
      ws: {
        serves: ['slave0', 'slave1'],
        config: { agent: { tick_interval: '150ms' }, backup: { runner: 'mariadb-dump', kill_grace: '10s' } },
      },
      op: {},
    },
  });
  ({ ws, op } = cluster.workspaces);
  [s0, s1, s2] = cluster.slaves as [Instance, Instance, Instance];
  // Created on the master: it replicates, as the platform's grants do.
  const m2 = cluster.masterOf(s2);
  await cluster.exec(m2, `CREATE USER '${NO_BINLOG_USER}'@'%' IDENTIFIED BY ?`, [NO_BINLOG_PASSWORD]);
  await cluster.exec(m2, `GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON infodba_schema.* TO '${NO_BINLOG_USER}'@'%'`);
  await cluster.waitReplicated();
  ws.serve([s2], { MysqlUser: NO_BINLOG_USER, MysqlPasswd: NO_BINLOG_PASSWORD });
  spiderIni = op.iniFile(cluster.spider);
});

after(async () => {
  await daemon?.dispose();
  await cluster?.close();
});

test(
  `${IDLE_TICKS} idle ticks and a backup leave no transaction of a replica's own but the task status writes`,
  { timeout: 300_000 },
  async (t) => {
    for (const s of [s0, s1, s2]) assert.deepEqual(await own(s), [], `${s.name}: own transactions before the agent`);
    daemon = new DaemonProcess(ws);
    await daemon.ready();
    await daemon.nextTicks(IDLE_TICKS, { timeoutMs: 240_000 });
    const idle = await Promise.all([s0, s1, s2].map(own));
    t.diagnostic(`own transactions after ${IDLE_TICKS} idle ticks: ${idle.map((x, i) => `slave${i} ${x.length}`).join(', ')}`);
    for (const [i, x] of idle.entries()) assert.deepEqual(x, [], `slave${i}: own transactions after idle ticks:\n${show(x)}`);

    // The host's status and the cluster's, while the agent runs.
    const host = await ws.cli('status');
    assert.match(host.stdout, /not reporting: needs SUPER or BINLOG ADMIN/, `host status: ${host.stdout}`);
    const text = await op.cli('status', '--cluster', '-c', spiderIni);
    const line = text.stdout.split('\n').find((l) => l.includes('SPT_SLAVE2'));
    assert.ok(line?.includes(REASON), `status --cluster, SPT_SLAVE2: ${line ?? text.stdout}`);
    assert.doesNotMatch(line ?? '', /lost|none/);
    const json = await op.cli('status', '--cluster', '-c', spiderIni, '--format', 'json');
    const insts = (JSON.parse(json.stdout) as { instances: { serverName: string; agent: { state: string } }[] }).instances;
    assert.equal(insts.find((i) => i.serverName === 'SPT_SLAVE2')?.agent.state, 'not-reporting');
    assert.equal(insts.find((i) => i.serverName === 'SPT_SLAVE0')?.agent.state, 'alive');
    assert.equal(insts.find((i) => i.serverName === 'SPT_SLAVE1')?.agent.state, 'alive');

    await insertTasks(cluster, [
      { backupId: 'rb-1', for: s0 },
      { backupId: 'rb-1', for: s1 },
    ]);
    for (const s of [s0, s1]) {
      const ended = async () => /^(success|failed)/.test((await taskOf(cluster, s, 'rb-1'))?.BackupStatus ?? '') || undefined;
      await waitFor(`${s.name}: rb-1 ended`, ended, 180_000);
    }
    for (const s of [s0, s1]) assert.equal((await taskOf(cluster, s, 'rb-1'))?.BackupStatus, 'success', s.name);
    // The verdict is there (written, not binlogged), and the presence.
    for (const s of [s0, s1]) {
      const v = await cluster.query(s, 'SELECT Verdict FROM infodba_schema.spiderbackup_manifest WHERE BackupId = ? AND Port = ?', [
        'rb-1',
        s.port,
      ]);
      assert.equal(v[0]?.Verdict, 'ok', `${s.name}: verdict`);
      const p = await cluster.query(s, 'SELECT Port FROM infodba_schema.spiderbackup_presence WHERE Port = ?', [s.port]);
      assert.equal(p.length, 1, `${s.name}: presence row`);
    }
    await daemon.nextTicks(10, { timeoutMs: 60_000 });
    await daemon.dispose();

    const after = await Promise.all([s0, s1, s2].map(own));
    t.diagnostic(`own transactions after the backup: ${after.map((x, i) => `slave${i} ${x.length}`).join(', ')}`);
    for (const [i, x] of after.entries()) if (x.length > 0) t.diagnostic(`slave${i}:\n${show(x)}`);
    for (const [i, x] of after.entries()) {
      const errant = x.filter((trx) => !isStatusWrite(trx));
      assert.deepEqual(errant, [], `slave${i}: own transactions that are not task status writes:\n${show(errant)}`);
    }
    // The status writes of one backup (claim → running, the final status): about 4 at most.
    for (const i of [0, 1]) {
      const n = after[i]?.length ?? 0;
      assert.ok(n >= 1 && n <= 4, `slave${i}: ${n} task status writes for one backup:\n${show(after[i] ?? [])}`);
    }
    assert.equal(after[2]?.length, 0, `slave2: ${show(after[2] ?? [])}`);

    // SPT_SLAVE2: nothing of the agent's own written there, and the reason said once.
    const tables = await cluster.query(
      s2,
      "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'infodba_schema' AND TABLE_NAME LIKE 'spiderbackup%'",
    );
    assert.deepEqual(tables, [], 'slave2: no table of the agent created');
    // (The purge's own refusal, a feature of its own, is another line.)
    const said = daemon.lines.filter((l) => /^not reporting: needs SUPER or BINLOG ADMIN/.test(l.msg));
    assert.equal(said.length, 1, `the reason is said once: ${JSON.stringify(said)}`);
    assert.equal(said[0]?.port, s2.port);
  },
);

test("pause --cluster, resume --cluster and cancel keep their records out of a replica's binary log", { timeout: 180_000 }, async (t) => {
  // No daemon: nothing claims rb-2, so cancel ends it on each replica (a status write).
  await daemon?.dispose();
  const before = await Promise.all([s0, s1, s2].map(own));
  const p = await op.cli('pause', '--cluster', '--for', '1h', '--reason', 'binlog test', '-c', spiderIni);
  assert.equal(p.code, 0, `pause: ${p.stdout}${p.stderr}`);
  const r = await op.cli('resume', '--cluster', '-c', spiderIni);
  assert.equal(r.code, 0, `resume: ${r.stdout}${r.stderr}`);
  await insertTasks(cluster, [
    { backupId: 'rb-2', for: s0 },
    { backupId: 'rb-2', for: s1 },
  ]);
  const c = await op.cli('cancel', 'rb-2', '-c', spiderIni);
  assert.equal(c.code, 0, `cancel: ${c.stdout}${c.stderr}`);
  for (const s of [s0, s1]) {
    assert.equal((await taskOf(cluster, s, 'rb-2'))?.BackupStatus, 'quit: no process', s.name);
    const rec = await cluster.query(s, 'SELECT BackupId FROM infodba_schema.spiderbackup_cancel WHERE Port = ?', [s.port]);
    assert.equal(rec.length, 1, `${s.name}: its own cancel record (written, not binlogged)`);
    const pause = await cluster.query(s, 'SELECT Port FROM infodba_schema.spiderbackup_cluster_pause WHERE Port = ?', [s.port]);
    assert.equal(pause.length, 1, `${s.name}: its own pause row (written, not binlogged)`);
  }
  const after = await Promise.all([s0, s1, s2].map(own));
  const added = after.map((x, i) => x.slice(before[i]?.length ?? 0));
  t.diagnostic(`own transactions from pause, resume and cancel: ${added.map((x, i) => `slave${i} ${x.length}`).join(', ')}`);
  for (const [i, x] of added.entries()) {
    const errant = x.filter((trx) => !isStatusWrite(trx));
    assert.deepEqual(errant, [], `slave${i}: own transactions that are not task status writes:\n${show(errant)}`);
  }
  // cancel's `quit: no process` on each replica's own row is its one status write there.
  assert.deepEqual(
    added.map((x) => x.length),
    [1, 1, 0],
  );
});
