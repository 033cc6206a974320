// The daemon against a real cluster: the compiled CLI started as a child process, the fake backup
// as its backup command, real signals. Nothing here depends on how fast the machine is: every
// wait is a poll for an observable fact (a row, a file, a log line) with a generous timeout.
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, type Instance } from '../src/sandbox/cluster.js';
import { byPort, setUpCluster, type AgentConfig, type TestCluster } from './support/cluster.js';
import { insertTasks, statusOf, taskOf } from './support/tasks.js';
import { pidAlive, waitFor, type Workspace } from './support/workspace.js';
import { DaemonProcess, freePort } from './support/daemon.js';
import { parseExposition, valueOf, type Exposition } from './support/prom.js';

let cluster: TestCluster;
let m0: Instance;
let m1: Instance;
/** The masters in port order: the order in which one host backs them up. Ports are random. */
let lo: Instance;
let hi: Instance;
let ws: Workspace;
let daemons: DaemonProcess[] = [];

before(async () => {
  cluster = await setUpCluster({ shards: 2, slaves: [0], tdbctl: true });
  [m0, m1] = cluster.masters as [Instance, Instance];
  [lo, hi] = byPort([m0, m1]) as [Instance, Instance];
});

after(() => cluster?.close());

beforeEach(async () => {
  await cluster.reset();
  ws = workspace();
});

afterEach(async () => {
  try {
    // Let every fake backup finish before its directory goes away, so nothing outlives the test.
    for (const inst of [m0, m1, cluster.spider]) ws.release(inst.port);
    await waitFor('every backup of the test to end', () => ws.runs().every((r) => !pidAlive(r.pid)), 60_000);
  } finally {
    for (const d of daemons) await d.dispose();
    daemons = [];
    ws.close();
  }
});

function workspace(config: AgentConfig = {}, serves: Instance[] = [m0, m1]): Workspace {
  return cluster.workspace({ config, serves });
}

function startDaemon(w: Workspace = ws): DaemonProcess {
  const d = new DaemonProcess(w);
  daemons.push(d);
  return d;
}

const journalEntries = (w: Workspace): string[] => {
  const dir = join(w.stateDir, 'journal');
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.json')) : [];
};

const quit = (inst: Instance, backupId: string) =>
  cluster.exec(inst, "UPDATE infodba_schema.global_backup SET BackupStatus = 'quit' WHERE BackupId = ? AND Port = ?", [
    backupId,
    inst.port,
  ]);

async function scrape(port: number, path = '/metrics'): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}

describe('daemon: the tick loop', () => {
  test('tasks scheduled into the table run within a couple of ticks, instance after instance, and are recorded success', async () => {
    await insertTasks(cluster, [
      { backupId: 'd-run', for: m0 },
      { backupId: 'd-run', for: m1 },
    ]);
    const d = startDaemon();
    await waitFor(
      'both tasks done',
      async () => (await statusOf(cluster, m0, 'd-run')) === 'success' && (await statusOf(cluster, m1, 'd-run')) === 'success',
    );
    assert.deepEqual(
      ws.runs().map((r) => r.port),
      [lo.port, hi.port],
    );
    const started = d.lines.filter((l) => l.msg === 'task claimed; backup handed to its supervisor');
    assert.deepEqual(
      started.map((l) => l.port),
      [lo.port, hi.port],
    );
    for (const l of started) assert.equal(l.backupId, 'd-run');
    assert.ok(!JSON.stringify(d.lines).includes(ADMIN_PASSWORD), 'no password in the log');
    d.signal('SIGTERM');
    assert.equal((await d.exited).code, 0);
  });

  test('a quit is acted on at the next tick: the backup is killed and quit: success recorded', async () => {
    ws.behave(m0.port, { block: true, grandchild: true });
    await insertTasks(cluster, [{ backupId: 'd-quit', for: m0 }]);
    startDaemon();
    const run = await waitFor('backup started', () => ws.runs()[0]);
    await quit(m0, 'd-quit');
    await waitFor('quit: success', async () => (await statusOf(cluster, m0, 'd-quit')) === 'quit: success');
    await waitFor('backup and its grandchild killed', () => !pidAlive(run.pid) && !pidAlive(run.grandchild as number));
    assert.equal(ws.runs().length, 1);
  });

  test(
    'kill -9 of the daemon mid-backup, then a restart: the backup goes on, is recognised as alive, is recorded success, and never ' +
      'runs twice',
    async () => {
      ws.behave(lo.port, { block: true });
      await insertTasks(cluster, [
        { backupId: 'd-kill9', for: lo },
        { backupId: 'd-kill9', for: hi },
      ]);
      const a = startDaemon();
      const run = await waitFor('backup started', () => ws.runs()[0]);
      const supervisorPid = await waitFor('supervisor pid recorded', async () => {
        const t = await taskOf(cluster, lo, 'd-kill9');
        return t && t.TaskPid > 0 ? t.TaskPid : undefined;
      });
      a.signal('SIGKILL');
      await a.exited;
      assert.ok(pidAlive(supervisorPid) && pidAlive(run.pid), 'kill -9 of the daemon does not touch the backup');

      const status = await ws.cli('status');
      assert.equal(status.code, 3, 'status says the daemon is down');
      assert.match(status.stdout, /NOT RUNNING .*did not stop cleanly/);

      const b = startDaemon();
      await b.ticks(3);
      const row = await taskOf(cluster, lo, 'd-kill9');
      assert.equal(row?.BackupStatus, 'running', 'not "no pid" or "process does not exist" after the restart');
      assert.equal(row?.TaskPid, supervisorPid);
      assert.equal(await statusOf(cluster, hi, 'd-kill9'), 'init', 'one running backup id per machine: hi waits');
      assert.equal(ws.runs().length, 1);

      ws.release(lo.port);
      await waitFor(
        'both done',
        async () => (await statusOf(cluster, lo, 'd-kill9')) === 'success' && (await statusOf(cluster, hi, 'd-kill9')) === 'success',
      );
      assert.deepEqual(
        ws.runs().map((r) => `${r.backupId}@${r.port}`),
        [`d-kill9@${lo.port}`, `d-kill9@${hi.port}`],
        'no second run',
      );
    },
  );

  test(
    'instance stopped while its backup runs: the final status is journaled on disk, then delivered once the instance is ' + 'back',
    async () => {
      ws.behave(m0.port, { block: true });
      await insertTasks(cluster, [{ backupId: 'd-journal', for: m0 }]);
      const d = startDaemon();
      await waitFor('backup started', () => ws.runs()[0]);
      await waitFor('supervisor pid recorded', async () => ((await taskOf(cluster, m0, 'd-journal'))?.TaskPid ?? -1) > 0);
      await cluster.stop(m0);
      let restarted = false;
      try {
        ws.release(m0.port);
        await d.waitLog('final status kept in the local journal; it is delivered when the instance is back', 60_000);
        const entries = journalEntries(ws);
        assert.equal(entries.length, 1);
        const entry = JSON.parse(readFileSync(join(ws.stateDir, 'journal', entries[0] as string), 'utf8')) as {
          status: string;
          key: { backupId: string; port: number };
        };
        assert.deepEqual([entry.status, entry.key.backupId, entry.key.port], ['success', 'd-journal', m0.port]);
        await d.ticks(2); // the daemon keeps ticking with the instance down
        assert.equal(journalEntries(ws).length, 1);
        await cluster.start(m0);
        restarted = true;
        await waitFor('delivered', async () => (await statusOf(cluster, m0, 'd-journal')) === 'success' && journalEntries(ws).length === 0);
        // The daemon's log reaches us through a pipe: its line may come just after the row changed.
        await d.waitLog('journaled final status delivered');
        assert.equal(ws.runs().length, 1);
      } finally {
        if (!restarted) await cluster.start(m0);
      }
    },
  );

  test('SIGHUP: a broken agent config is logged and the old one kept; a new drop-in is picked up and its task runs', async () => {
    const w = workspace({}, [m0]);
    ws.close();
    ws = w;
    await insertTasks(cluster, [{ backupId: 'd-hup', for: m1 }]);
    const d = startDaemon();
    await d.ticks(2);
    assert.equal(await statusOf(cluster, m1, 'd-hup'), 'init', 'no drop-in for m1 yet');

    const good = readFileSync(ws.agentIni, 'utf8');
    writeFileSync(ws.agentIni, `${good}\n[agent]\ntick_interval = soon\n`);
    d.signal('SIGHUP');
    const err = await d.waitLog('reload: agent config not usable; the previous configuration stays in force');
    assert.match(String(err.err), /tick_interval = "soon"/);
    await d.ticks(1);
    assert.equal(d.child.exitCode, null, 'still running');

    writeFileSync(ws.agentIni, good);
    cluster.writeInstanceIni(ws.confDir, m1);
    d.signal('SIGHUP');
    const reloaded = await d.waitLog('configuration reloaded (SIGHUP)');
    assert.deepEqual(reloaded.instances, [lo.port, hi.port]);
    await waitFor("the new instance's task ran", async () => (await statusOf(cluster, m1, 'd-hup')) === 'success');
  });

  test('a second daemon is refused with a message naming the running one', async () => {
    const a = startDaemon();
    await a.ready();
    const second = await ws.cli('daemon');
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`another spiderbackup daemon runs on this host \\(pid ${a.pid}`));
    assert.equal(a.child.exitCode, null);
  });

  test('pause: nothing starts, housekeeping goes on, status says so; resume: the task runs', async () => {
    const d = startDaemon();
    await d.ready();
    const p = await ws.cli('pause', '--for', '1h', '--reason', 'skip tonight');
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /Paused until .*no new backup starts and no schedule fires/);
    const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await new Promise((r) => dead.on('close', r));
    await insertTasks(cluster, [
      { backupId: 'd-pause', for: m0 },
      { backupId: 'd-quit-paused', for: m1, status: 'quit', taskPid: dead.pid as number },
    ]);
    await waitFor('housekeeping while paused', async () => (await statusOf(cluster, m1, 'd-quit-paused')) === 'quit: no process');
    await d.ticks(2);
    assert.equal(await statusOf(cluster, m0, 'd-pause'), 'init');
    assert.equal(ws.runs().length, 0);

    const s = await ws.cli('status', '--format', 'json');
    assert.equal(s.code, 0, s.stderr);
    const view = JSON.parse(s.stdout) as {
      daemon: { running: boolean; pid: number };
      pause: { active: boolean; reason: string; meaning: string };
      lastTick: { paused: boolean };
    };
    assert.deepEqual(
      [view.daemon.running, view.daemon.pid, view.pause.active, view.pause.reason, view.lastTick.paused],
      [true, d.pid, true, 'skip tonight', true],
    );
    assert.match(view.pause.meaning, /housekeeping, quit handling and journal delivery go on/);
    const text = await ws.cli('status');
    assert.match(text.stdout, /Paused: +until .* — skip tonight/);
    assert.match(text.stdout, new RegExp(`${m0.port}.*d-pause init`));

    // the pause is a file: it survives a restart of the daemon
    d.signal('SIGTERM');
    assert.equal((await d.exited).code, 0);
    const again = startDaemon();
    await again.ticks(2);
    assert.equal(await statusOf(cluster, m0, 'd-pause'), 'init');

    const r = await ws.cli('resume');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Resumed/);
    await waitFor('task runs after resume', async () => (await statusOf(cluster, m0, 'd-pause')) === 'success');
  });

  test('SIGTERM exits 0 while a backup runs; the backup completes and is recorded success without any daemon', async () => {
    ws.behave(m0.port, { block: true });
    await insertTasks(cluster, [{ backupId: 'd-term', for: m0 }]);
    const d = startDaemon();
    const run = await waitFor('backup started', () => ws.runs()[0]);
    await waitFor('supervisor pid recorded', async () => ((await taskOf(cluster, m0, 'd-term'))?.TaskPid ?? -1) > 0);
    d.signal('SIGTERM');
    assert.equal((await d.exited).code, 0);
    await d.waitLog('daemon stopped'); // 'exit' can come before the last of its output is read
    assert.ok(pidAlive(run.pid), 'the backup was not touched');
    assert.equal(await statusOf(cluster, m0, 'd-term'), 'running');
    const s = await ws.cli('status');
    assert.equal(s.code, 3);
    assert.match(s.stdout, /NOT RUNNING .* when it was stopped/);
    ws.release(m0.port);
    await waitFor('recorded success by its supervisor', async () => (await statusOf(cluster, m0, 'd-term')) === 'success');
    const check = await ws.cli('check', '--run');
    assert.equal(check.code, 0, check.stderr);
    assert.equal(ws.runs().length, 1, 'nothing ran twice');
  });
});

describe('daemon: schedule from cron', () => {
  test('fires on the primary spider node only (re-checked at fire time), and not while paused', async () => {
    const w = workspace({ schedule: { cron: '* * * * * *' } }, [cluster.spider]);
    ws.close();
    ws = w;
    cluster.tdbctl?.setPrimary(false);
    const d = startDaemon();
    const np = await d.waitLog('schedule time reached; this spider node is not the primary, so it schedules nothing', 60_000);
    assert.equal(np.spider, `127.0.0.1:${cluster.spider.port}`);
    const s = await ws.cli('status', '--format', 'json');
    const view = JSON.parse(s.stdout) as { schedule: { cron: string; spiderHost: boolean; nextRun: string | null } };
    assert.equal(view.schedule.cron, '* * * * * *');
    assert.equal(view.schedule.spiderHost, true);
    assert.ok(view.schedule.nextRun && !Number.isNaN(Date.parse(view.schedule.nextRun)));

    assert.equal((await ws.cli('pause', '--for', '10m')).code, 0);
    cluster.tdbctl?.setPrimary(true);
    await d.waitLog('schedule time reached while paused; no backup scheduled', 60_000);
    assert.equal(d.log('schedule time reached; global backup scheduled'), undefined);

    assert.equal((await ws.cli('resume')).code, 0);
    const scheduled = await d.waitLog('schedule time reached; global backup scheduled', 60_000);
    d.signal('SIGTERM');
    assert.equal((await d.exited).code, 0);
    const id = String(scheduled.backupId);
    const rows = await cluster.query<{ Port: number }>(cluster.spider, 'SELECT Port FROM infodba_schema.global_backup WHERE BackupId = ?', [
      id,
    ]);
    assert.deepEqual(rows.map((r) => r.Port).sort(), [cluster.spider.port, m0.port, m1.port, (cluster.slaves[0] as Instance).port].sort());
  });
});

describe('daemon: metrics, health and logs', () => {
  test('/healthz and /metrics: valid Prometheus text whose counters move with the work', async () => {
    const port = await freePort();
    const w = workspace({ metrics: { listen: `127.0.0.1:${port}` } });
    ws.close();
    ws = w;
    const d = startDaemon();
    await waitFor('healthy', async () => (await scrape(port, '/healthz').catch(() => ({ status: 0, text: '' }))).status === 200);
    const health = JSON.parse((await scrape(port, '/healthz')).text) as { status: string };
    assert.equal(health.status, 'ok');
    assert.equal((await scrape(port, '/nope')).status, 404);

    const before = parseExposition((await scrape(port)).text);
    assert.ok(valueOf(before, 'spiderbackup_ticks_total', { result: 'ok' }) >= 1);
    assert.equal(valueOf(before, 'spiderbackup_backups_started_total'), 0);

    ws.behave(m1.port, { exitCode: 3 });
    await insertTasks(cluster, [
      { backupId: 'd-metrics', for: m0 },
      { backupId: 'd-metrics', for: m1 },
    ]);
    let e: Exposition = before;
    await waitFor('counters to move', async () => {
      e = parseExposition((await scrape(port)).text);
      return (
        valueOf(e, 'spiderbackup_backups_succeeded_total', { port: String(m0.port) }) === 1 &&
        valueOf(e, 'spiderbackup_backups_failed_total', { port: String(m1.port) }) === 1
      );
    });
    assert.equal(valueOf(e, 'spiderbackup_backups_started_total'), 2);
    assert.equal(valueOf(e, 'spiderbackup_backups_succeeded_total'), 1);
    assert.equal(valueOf(e, 'spiderbackup_backups_failed_total'), 1);
    // The gauge counts unfinished tasks only: an idle tick reads nothing of the history.
    assert.equal(valueOf(e, 'spiderbackup_tasks', { port: String(m0.port), status: 'success' }), 0);
    assert.equal(valueOf(e, 'spiderbackup_tasks', { port: String(m1.port), status: 'init' }), 0);
    assert.equal(valueOf(e, 'spiderbackup_journal_backlog'), 0);
    assert.equal(valueOf(e, 'spiderbackup_instances', { state: 'ok' }), 2);
    assert.ok(valueOf(e, 'spiderbackup_ticks_total', { result: 'ok' }) > valueOf(before, 'spiderbackup_ticks_total', { result: 'ok' }));
    assert.ok(valueOf(e, 'spiderbackup_tick_duration_seconds_count') >= valueOf(e, 'spiderbackup_ticks_total'));
    assert.ok(valueOf(e, 'spiderbackup_last_successful_tick_timestamp_seconds') > 0);
    for (const name of ['spiderbackup_scheduled_runs_total', 'spiderbackup_backups_killed_total', 'spiderbackup_paused'])
      assert.ok(e.types.has(name), name);

    assert.equal((await ws.cli('pause', '--for', '1h')).code, 0);
    await waitFor('paused gauge', async () => valueOf(parseExposition((await scrape(port)).text), 'spiderbackup_paused') === 1);
    d.signal('SIGTERM');
    assert.equal((await d.exited).code, 0);
  });

  test('a non-loopback metrics address is refused unless allowed; an address in use stops start-up with a clear message', async () => {
    const w = workspace({ metrics: { listen: '0.0.0.0:9797' } });
    const r = await w.cli('daemon');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\[metrics\] listen = "0\.0\.0\.0:9797": is not a loopback address/);
    w.close();
    const port = await freePort();
    const a = startDaemon(workspace({ metrics: { listen: `127.0.0.1:${port}` } }));
    await a.ready();
    const b = workspace({ metrics: { listen: `127.0.0.1:${port}` } });
    const taken = await b.cli('daemon');
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} for metrics`));
    b.close();
    await a.dispose();
    a.ws.close();
  });

  test('logs: the [log] file filtered by backup id, port and level, pretty or JSON; -f follows new lines', async () => {
    ws.writeAgentConfig({ log: { file: join(ws.dir, 'log', 'agent.log') } });
    ws.behave(m1.port, { exitCode: 3, stderr: 'disk full\n' });
    await insertTasks(cluster, [
      { backupId: 'd-logs', for: m0 },
      { backupId: 'd-logs', for: m1 },
      { backupId: 'd-logs-other', for: m0, createdAgoS: 60 },
    ]);
    startDaemon();
    await waitFor(
      'all done',
      async () => (await statusOf(cluster, m1, 'd-logs'))?.startsWith('failed') && (await statusOf(cluster, m0, 'd-logs')) === 'success',
    );

    const json = await ws.cli('logs', '--backup-id', 'd-logs', '--json');
    assert.equal(json.code, 0, json.stderr);
    const lines = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { backupId: string; port: number; msg: string; level: number });
    assert.ok(lines.length >= 4);
    assert.ok(
      lines.every((l) => l.backupId === 'd-logs'),
      'only that backup id, not d-logs-other',
    );
    assert.ok(
      lines.some((l) => l.msg === 'backup finished' && l.port === m0.port),
      'supervisor lines are in the same file',
    );

    const warn = await ws.cli('logs', '--backup-id', 'd-logs', '--port', String(m1.port), '--level', 'warn', '--json');
    const wl = warn.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { port: number; level: number; msg: string });
    assert.ok(wl.length >= 1 && wl.every((l) => l.port === m1.port && l.level >= 40));
    assert.ok(wl.some((l) => l.msg === 'backup failed'));

    const pretty = await ws.cli('logs', '--backup-id', 'd-logs', '--port', String(m0.port));
    assert.match(pretty.stdout, /INFO.*backup finished/);
    assert.match(pretty.stdout, /backupId: "d-logs"/);
    assert.ok(!pretty.stdout.includes(ADMIN_PASSWORD));

    const follow = ws.start(['logs', '-f', '--backup-id', 'd-logs-2', '--json']);
    try {
      let out = '';
      follow.child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
      await insertTasks(cluster, [{ backupId: 'd-logs-2', for: m0 }]);
      await waitFor('followed line', () => /"msg":"backup finished"/.test(out));
      assert.ok(
        out
          .trim()
          .split('\n')
          .every((l) => (JSON.parse(l) as { backupId: string }).backupId === 'd-logs-2'),
      );
    } finally {
      follow.child.kill('SIGTERM');
      await follow.result;
    }
  });
});

describe('daemon: usage', () => {
  test('help lists the daemon and operator commands', async () => {
    const r = await ws.cli('--help');
    for (const c of ['daemon', 'pause', 'resume', 'status', 'logs']) assert.match(r.stdout, new RegExp(`\\n  ${c}\\b`), c);
    const p = await ws.cli('pause');
    assert.equal(p.code, 2);
    assert.match(p.stderr, /--for <duration>/);
    const bad = await ws.cli('pause', '--for', 'tonight');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /must be a duration/);
  });
});
