// One view and one hand for the whole cluster, on a real Spider cluster with real daemons (one
// workspace = one host): agent presence and its ages by the database clock, `status --cluster`,
// `pause --cluster` / `resume --cluster`, and what `schedule --wait` names.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type TestCluster, type ClusterWorkspace } from './support/cluster.js';
import { DaemonProcess } from './support/daemon.js';
import { clearTasks, insertTasks, statusOf } from './support/tasks.js';
import { CLI, waitFor, type Workspace } from './support/workspace.js';

interface InstanceJson {
  serverName: string;
  role: string;
  host: string;
  port: number;
  agent: { state: string; version?: string; ageS?: number; pauseReason?: string; pauseUntil?: string };
  running?: { backupId: string; elapsedS: number; bytes: number | null };
  problems: string[];
}

let cluster: TestCluster<'wsA' | 'wsB' | 'wsC' | 'wsD' | 'op'>;
let m0: Instance, m1: Instance, m2: Instance, s0: Instance, s1: Instance;
/** Hosts: A (spider node + SPT0, its clock two hours ahead), B (SPT1), C (SPT_SLAVE0), D (SPT2 + SPT_SLAVE1, from the pause test on). */
let wsA: Workspace, wsB: Workspace, wsC: Workspace, wsD: Workspace;
/** The operator's workspace on the spider host: the commands' settings. */
let op: ClusterWorkspace;
let spiderIni: string;
const daemons: DaemonProcess[] = [];

/** Debian's libfaketime (package faketime), multi-threaded variant: node runs threads. */
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';

/**
 * The daemon of a host, its clock `offset` away from the real one when given. libfaketime is
 * preloaded through `env` (which execs) rather than the `faketime` wrapper (which forks), so the
 * daemon keeps the child's pid. Monotonic clocks are left alone: timers work; the wall clock moves.
 */
function startDaemon(ws: Workspace, offset?: string): DaemonProcess {
  const cmd = [process.execPath, CLI, 'daemon', '--agent-config', ws.agentIni];
  const fake = ['env', `LD_PRELOAD=${LIBFAKETIME}`, `FAKETIME=${offset}`, 'FAKETIME_DONT_FAKE_MONOTONIC=1'];
  const d = new DaemonProcess(ws, offset ? [...fake, ...cmd] : cmd);
  daemons.push(d);
  return d;
}

const running = (d: DaemonProcess): boolean => d.child.exitCode === null && d.child.signalCode === null;

async function clusterStatus(): Promise<{ code: number | null; instances: InstanceJson[]; raw: string }> {
  const r = await op.cli('status', '--cluster', '-c', spiderIni, '--format', 'json');
  assert.ok(r.code === 0 || r.code === 1, `status --cluster exit ${r.code}: ${r.stderr}`);
  return { code: r.code, instances: (JSON.parse(r.stdout) as { instances: InstanceJson[] }).instances, raw: r.stdout };
}

const byName = (list: InstanceJson[], name: string): InstanceJson => {
  const i = list.find((x) => x.serverName === name);
  assert.ok(i, `${name} in ${JSON.stringify(list.map((x) => x.serverName))}`);
  return i;
};

before(async () => {
  assert.ok(existsSync(LIBFAKETIME), `${LIBFAKETIME} is missing: install the Debian package faketime (scripts/install.sh)`);
  // Ticks of 2 s where an agent must stay alive; SPT1's host ticks every second. At such short
  // ticks an agent is lost after the rule's floor (30 s, README "status --cluster"), not 3 ticks.
  const tick2s = { agent: { tick_interval: '2s' } };
  cluster = await setUpCluster({
    shards: 3,
    slaves: [0, 1],
    tdbctl: true,
    workspaces: {
      wsA: { serves: ['spider0', 'master0'], config: tick2s },
      wsB: { serves: ['master1'] },
      wsC: { serves: ['slave0'], config: tick2s },
      wsD: { serves: ['master2', 'slave1'], config: tick2s },
      op: { config: { schedule: { wait_interval: '500ms', unclaimed_after: '12s' } } },
    },
  });
  ({ wsA, wsB, wsC, wsD, op } = cluster.workspaces);
  [m0, m1, m2] = cluster.masters as [Instance, Instance, Instance];
  [s0, s1] = cluster.slaves as [Instance, Instance];
  spiderIni = op.iniFile(cluster.spider);
});

after(async () => {
  for (const ws of [wsA, wsB, wsC, wsD]) for (const p of cluster?.all() ?? []) ws?.release(p.port);
  await Promise.all(daemons.map((d) => d.dispose()));
  await cluster?.close();
});

describe('status --cluster', () => {
  test(
    'alive (clock moved), lost, paused, none, unreachable and a running backup; ages by the database clock',
    { timeout: 240_000 },
    async (t) => {
      assert.equal((await wsC.cli('pause', '--for', '1h', '--reason', 'disk swap')).code, 0);
      const a = startDaemon(wsA, '+2h');
      const b = startDaemon(wsB);
      const c = startDaemon(wsC);
      await Promise.all([a.ready(), b.ready(), c.ready()]);
      // A task of SPT0 alone, written on its master: host A runs it and holds it running.
      wsA.behave(m0.port, { block: true });
      await insertTasks(cluster, [{ backupId: 'run-1', for: m0 }], { on: m0 });
      await waitFor('the backup of SPT0 to run', () => wsA.runs().some((r) => r.port === m0.port));
      await waitFor('its presence to show it', async () => {
        const [p] = await cluster.query(m0, 'SELECT RunningBackupId FROM infodba_schema.spiderbackup_presence WHERE Port = ?', [m0.port]);
        return (p as { RunningBackupId?: string } | undefined)?.RunningBackupId === 'run-1';
      });
      await b.dispose(); // SPT1's agent dies
      await cluster.stop(m2); // SPT2 unreachable; SPT_SLAVE1 never had an agent
      try {
        await statusWhileSPT2IsDown(t, a);
      } finally {
        wsA.release(m0.port);
        await cluster.start(m2);
      }
      await waitFor('run-1 to succeed', async () => {
        const [r] = await cluster.query(m0, "SELECT BackupStatus FROM infodba_schema.global_backup WHERE BackupId = 'run-1'");
        return (r as { BackupStatus: string }).BackupStatus === 'success';
      });
    },
  );
});

async function statusWhileSPT2IsDown(t: TestContext, a: DaemonProcess): Promise<void> {
  {
    const startedAt = Date.now();
    const { instances, code } = await waitFor(
      'SPT1 lost',
      async () => {
        const s = await clusterStatus();
        return byName(s.instances, 'SPT1').agent.state === 'lost' ? s : undefined;
      },
      90_000,
    );
    t.diagnostic(`lost within ${((Date.now() - startedAt) / 1000).toFixed(1)} s of the agent's death (tick 1 s)`);
    assert.equal(code, 1, 'not every agent alive or paused');
    const spider = byName(instances, 'SPIDER0');
    const spt0 = byName(instances, 'SPT0');
    assert.equal(spider.role, 'spider');
    assert.equal(spider.agent.state, 'alive');
    assert.equal(spt0.agent.state, 'alive');
    // Host A's clock is two hours ahead; the ages come from the database clock all the same.
    assert.ok((spt0.agent.ageS ?? -1) >= 0 && (spt0.agent.ageS ?? 99) <= 7, `age ${spt0.agent.ageS}`);
    const logged = a.lines.map((l) => Date.parse(String(l.time))).filter((x) => !Number.isNaN(x));
    assert.ok(logged.length > 0 && logged.every((x) => x > Date.now() + 3600_000), "the daemon's clock is two hours ahead");
    assert.equal(spt0.running?.backupId, 'run-1');
    assert.equal(byName(instances, 'SPT1').agent.state, 'lost');
    assert.match(byName(instances, 'SPT1').problems.join(), /agent lost: its last tick was (\d+ s|\d+m\d\ds|\d+h\d\dm\d\ds) ago/);
    const spt2 = byName(instances, 'SPT2');
    assert.equal(spt2.agent.state, 'unknown');
    assert.match(spt2.problems.join(), /unreachable/);
    const sl0 = byName(instances, 'SPT_SLAVE0');
    assert.equal(sl0.agent.state, 'paused');
    assert.equal(sl0.agent.pauseReason, 'disk swap');
    assert.equal(byName(instances, 'SPT_SLAVE1').agent.state, 'none');
    for (const i of instances) assert.ok(typeof i.host === 'string' && typeof i.port === 'number' && i.role !== '');

    const timings: number[] = [];
    let table = '';
    for (let k = 0; k < 3; k++) {
      const t0 = process.hrtime.bigint();
      const r = await op.cli('status', '--cluster', '-c', spiderIni);
      timings.push(Number(process.hrtime.bigint() - t0) / 1e6);
      table = r.stdout;
    }
    t.diagnostic(`status --cluster (6 instances, one unreachable), whole CLI: ${timings.map((x) => x.toFixed(0)).join(', ')} ms`);
    t.diagnostic(`\n${table}`);
    assert.match(table, /SPT_SLAVE0 .*paused/);
  }
}

describe('pause --cluster', () => {
  test(
    'every agent honours it within a tick, a replica with a stopped SQL thread included; resume --cluster lifts it',
    { timeout: 120_000 },
    async (t) => {
      await clearTasks(cluster);
      assert.equal((await wsC.cli('resume')).code, 0);
      startDaemon(wsB);
      startDaemon(wsD);
      await cluster.exec(s1, 'STOP SLAVE SQL_THREAD'); // a pause must still reach it
      const p = await op.cli('pause', '--cluster', '--for', '2h', '--reason', 'storage maintenance', '-c', spiderIni);
      t.diagnostic(`\n${p.stdout}`);
      assert.equal(p.code, 0, p.stdout + p.stderr);
      assert.match(p.stdout, /Cluster paused for 2h00m00s on 6 of 6 instances/);
      const [own] = await cluster.query(s1, 'SELECT Reason FROM infodba_schema.spiderbackup_cluster_pause WHERE Port = ?', [s1.port]);
      assert.equal((own as { Reason: string }).Reason, 'storage maintenance', 'written on the replica itself');

      const s = await waitFor(
        'every agent paused',
        async () => {
          const st = await clusterStatus();
          // SPT_SLAVE0's host was paused on its own until just before: wait for the cluster's reason.
          const all = st.instances.every((i) => i.agent.state === 'paused' && i.agent.pauseReason === 'cluster: storage maintenance');
          return all ? st : undefined;
        },
        30_000,
      );
      assert.equal(s.code, 0, 'paused agents are fine');
      for (const i of s.instances) assert.equal(i.agent.pauseReason, 'cluster: storage maintenance', i.serverName);
      const shown = await op.cli('status', '--cluster', '-c', spiderIni);
      assert.match(shown.stdout, /Cluster paused until .*storage maintenance/);
      t.diagnostic(`\n${shown.stdout}`);

      const sched = await op.cli('schedule', '-c', spiderIni, '--backup-id', 'cp-1');
      assert.equal(sched.code, 0, sched.stderr);
      // SPT_SLAVE1's SQL thread is stopped: only SPT_SLAVE0 gets its row.
      await waitFor('the row of SPT_SLAVE0 to arrive', () => statusOf(cluster, s0, 'cp-1'));
      await Promise.all(daemons.filter(running).map((d) => d.nextTicks(3)));
      // The host's own status says so, and a hand-run check obeys it too.
      const hostStatus = await wsB.cli('status');
      assert.match(hostStatus.stdout, /Cluster: +paused until .* — storage maintenance/);
      const hand = await wsB.cli('check', '--run');
      assert.equal(hand.code, 0, hand.stdout + hand.stderr);
      assert.match(hand.stdout, /The cluster is paused until .* \(storage maintenance\): nothing new starts\.\nNothing started/);
      const runs = [wsA, wsB, wsC, wsD].flatMap((ws) => ws.runs()).filter((r) => r.backupId === 'cp-1');
      assert.deepEqual(runs, [], 'no backup starts while the cluster is paused');

      const r = await op.cli('resume', '--cluster', '-c', spiderIni);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /Cluster pause lifted on 6 of 6 instances/);
      // Every task whose row is there runs: SPT_SLAVE1's never arrived.
      await waitFor(
        'the backups of cp-1',
        () => [wsA, wsB, wsC, wsD].flatMap((ws) => ws.runs()).filter((x) => x.backupId === 'cp-1').length === 5,
        60_000,
      );
    },
  );
});

describe('schedule --wait', () => {
  test(
    'names a lost agent, a paused host and a replica whose SQL thread is stopped; gives up with exit 1 naming them',
    { timeout: 240_000 },
    async (t) => {
      await op.cli('resume', '--cluster', '-c', spiderIni); // whatever the test before left
      // Not clearTasks: it waits for every replica, and SPT_SLAVE1 applies nothing.
      for (const m of cluster.masters) await cluster.exec(m, 'DELETE FROM infodba_schema.global_backup');
      const b = daemons.find((d) => d.ws === wsB && running(d));
      await b?.dispose(); // SPT1's agent is lost again
      assert.equal((await wsC.cli('pause', '--for', '1h', '--reason', 'disk swap')).code, 0);
      const started = Date.now();
      const waiter = op.start(['schedule', '-c', spiderIni, '--wait', '--backup-id', 'w-1']);
      try {
        await waitFor(
          'SPT1, SPT_SLAVE0 and SPT_SLAVE1 named',
          () => {
            const out = waiter.stdout();
            return (
              out.includes(`SPT1 ${m1.host}:${m1.port}: agent lost`) &&
              new RegExp(`SPT_SLAVE0 ${s0.host}:${s0.port}: host paused until .*: disk swap`).test(out) &&
              new RegExp(`SPT_SLAVE1 ${s1.host}:${s1.port}: its row has not arrived by replication .*SQL thread is not running`).test(out)
            );
          },
          120_000,
        );
        t.diagnostic(`named within ${((Date.now() - started) / 1000).toFixed(1)} s`);
        assert.equal((await wsC.cli('resume')).code, 0);
        const r = await waiter.result;
        t.diagnostic(`\n${r.stdout.split('\n').slice(-40).join('\n')}`);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stdout, /gave up: the tasks left can no longer finish/);
        assert.match(r.stdout, new RegExp(`SPT1 .*${m1.port}.*agent lost for`));
        assert.match(r.stdout, new RegExp(`SPT_SLAVE1 .*${s1.port}.*never arrived`));
        assert.doesNotMatch(r.stdout.split('gave up')[1] ?? '', /SPT_SLAVE0/, 'the resumed host finished');
        t.diagnostic(`exit 1 after ${((Date.now() - started) / 1000).toFixed(1)} s (unclaimed_after 12 s)`);
      } catch (err) {
        t.diagnostic(waiter.stdout());
        throw err;
      } finally {
        waiter.child.kill('SIGKILL');
        await cluster.exec(s1, 'START SLAVE SQL_THREAD').catch(() => {});
      }
    },
  );
});
