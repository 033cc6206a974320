// The daemon's pure and file-level parts: tick scheduling, lock, pause, transitions, health,
// status view, log filtering and following, config reload plan, metrics exposition.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTicker, nextDelay } from '../../src/daemon/ticker.js';
import { activePause, clearPause, pauseFile, PauseFileError, readPause, writePause } from '../../src/state/pause.js';
import { finishedSince } from '../../src/daemon/transitions.js';
import { healthOf } from '../../src/daemon/health.js';
import { renderStatusText, statusView } from '../../src/cli/render/status-view.js';
import type { DaemonStatus } from '../../src/state/daemon-status.js';
import { LEVELS, matches, parseLine } from '../../src/cli/log-filter.js';
import { readLogFile } from '../../src/cli/log-source.js';
import { loadDaemonConfig, planReload } from '../../src/daemon/config.js';
import { cronProblem } from '../../src/daemon/cron.js';
import { createMetrics } from '../../src/daemon/metrics.js';
import { ConfigError } from '../../src/errors.js';
import { parseExposition, valueOf } from '../support/prom.js';
import type { TaskRow } from '../../src/task/task.js';

const dir = () => mkdtempSync(join(tmpdir(), 'sb-daemon-unit-'));

async function until(what: string, fn: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('tick scheduling: fixed rate from tick starts; a long tick makes the next one late, not doubled', () => {
  assert.deepEqual(nextDelay(1000, 1200, 1000), { delayMs: 800, lateByMs: 0 });
  assert.deepEqual(nextDelay(1000, 2000, 1000), { delayMs: 0, lateByMs: 0 });
  assert.deepEqual(nextDelay(1000, 3500, 1000), { delayMs: 0, lateByMs: 1500 });
});

test('ticker: never two ticks at once; triggers during a tick coalesce into one more; stop waits for the tick in flight', async () => {
  const gates: ReturnType<typeof deferred>[] = [];
  const reasons: string[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  const late: number[] = [];
  const ticker = createTicker({
    intervalMs: 60_000,
    tick: async (reason) => {
      reasons.push(reason);
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      const g = deferred();
      gates.push(g);
      await g.promise;
      concurrent--;
    },
    onLate: ({ lateByMs }) => late.push(lateByMs),
  });
  ticker.start();
  await until('first tick', () => gates.length === 1);
  ticker.trigger('a');
  ticker.trigger('b');
  assert.equal(gates.length, 1, 'no second tick while one runs');
  gates[0]?.resolve();
  await until('the coalesced tick', () => gates.length === 2);
  assert.deepEqual(reasons, ['start', 'a']);
  const stopping = ticker.stop(10_000);
  let stopped = false;
  void stopping.then(() => (stopped = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(stopped, false, 'stop waits for the tick in flight');
  gates[1]?.resolve();
  assert.equal(await stopping, true);
  ticker.trigger('after stop');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(gates.length, 2, 'nothing runs after stop');
  assert.equal(maxConcurrent, 1);
  assert.deepEqual(late, []);
});

test('ticker: stop gives up on a stuck tick after the bound', async () => {
  const ticker = createTicker({ intervalMs: 60_000, tick: () => new Promise<void>(() => {}) });
  ticker.start();
  await until('tick', () => ticker.busy());
  assert.equal(await ticker.stop(50), false);
});

test('ticker: a tick longer than the interval is reported as late and the next starts at once', async () => {
  const late: number[] = [];
  let n = 0;
  const ticker = createTicker({
    intervalMs: 100,
    tick: async () => {
      n++;
      if (n === 1) await new Promise((r) => setTimeout(r, 250));
    },
    onLate: ({ lateByMs }) => late.push(lateByMs),
  });
  ticker.start();
  await until('second tick', () => n >= 2);
  await ticker.stop(1000);
  assert.equal(late.length, 1);
  assert.ok((late[0] as number) > 0);
});

test('pause: written, read, expires by itself, cleared; a damaged file is an error, not silence', () => {
  const d = dir();
  const now = new Date('2030-01-01T00:00:00Z');
  assert.equal(readPause(d), undefined);
  const p = writePause(d, 24 * 3600_000, 'skip tonight', 'alice', now);
  assert.equal(p.until, '2030-01-02T00:00:00.000Z');
  assert.deepEqual(readPause(d), p);
  assert.ok(activePause(readPause(d), new Date('2030-01-01T23:59:59Z')));
  assert.equal(activePause(readPause(d), new Date('2030-01-02T00:00:00Z')), undefined);
  assert.equal(clearPause(d, now)?.reason, 'skip tonight');
  assert.equal(readPause(d), undefined);
  writeFileSync(pauseFile(d), '{"until": ');
  assert.throws(() => readPause(d), PauseFileError);
  clearPause(d);
  assert.equal(readPause(d), undefined);
});

const task = (backupId: string, port: number, status: string): TaskRow => ({
  backupId,
  port,
  status,
  host: 'h',
  shardValue: 0,
  serverName: 'SPT0',
  wrapper: 'mysql',
  taskPid: 1,
  createdAt: '',
  updatedAt: '',
  createdAgeS: 0,
  updatedAgeS: 0,
});

test('transitions: counted once, only for tasks seen unfinished; an unreadable instance keeps what was seen of it', () => {
  const first = finishedSince(new Map(), [
    { port: 1, tasks: [task('old', 1, 'success'), task('a', 1, 'init'), task('b', 1, 'running')], unreadable: false },
    { port: 2, tasks: [task('c', 2, 'running')], unreadable: false },
  ]);
  assert.deepEqual([first.succeeded.length, first.failed.length], [0, 0], 'history is not counted');
  const second = finishedSince(first.seen, [
    { port: 1, tasks: [task('old', 1, 'success'), task('a', 1, 'success'), task('b', 1, 'failed: exit code 3')], unreadable: false },
    { port: 2, tasks: [], unreadable: true },
  ]);
  assert.deepEqual(
    second.succeeded.map((t) => t.backupId),
    ['a'],
  );
  assert.deepEqual(
    second.failed.map((t) => t.backupId),
    ['b'],
  );
  const third = finishedSince(second.seen, [
    { port: 1, tasks: [task('a', 1, 'success')], unreadable: false },
    { port: 2, tasks: [task('c', 2, 'success')], unreadable: false },
  ]);
  assert.deepEqual(
    third.succeeded.map((t) => t.backupId),
    ['c'],
    'delivered after the instance came back: counted then, and a is not counted twice',
  );
});

test('health: starting, ok, stale, failing', () => {
  const base = {
    startedAt: new Date(0),
    lastError: undefined,
    intervalMs: 10_000,
    paused: false,
    journalBacklog: 0,
    instanceErrors: 0,
    instancesDown: [],
  };
  const now = new Date(1_000_000);
  assert.equal(healthOf({ ...base, lastTickOk: undefined, lastSuccessfulTickAt: undefined }, now).body.status, 'starting');
  const ok = healthOf({ ...base, lastTickOk: true, lastSuccessfulTickAt: new Date(now.getTime() - 5000) }, now);
  assert.equal(ok.ok, true);
  assert.equal(healthOf({ ...base, lastTickOk: true, lastSuccessfulTickAt: new Date(now.getTime() - 61_000) }, now).body.status, 'stale');
  const failing = healthOf({ ...base, lastTickOk: false, lastSuccessfulTickAt: new Date(now.getTime() - 5000), lastError: 'boom' }, now);
  assert.deepEqual([failing.ok, failing.body.status, failing.body.lastError], [false, 'failing', 'boom']);
});

function snapshot(over: Partial<DaemonStatus> = {}): DaemonStatus {
  return {
    format: 1,
    pid: 42,
    startedAt: '2030-01-01T00:00:00.000Z',
    writtenAt: '2030-01-01T01:00:00.000Z',
    state: 'running',
    agentConfig: '/etc/a.ini',
    configDir: '/etc/conf.d',
    stateDir: '/var/lib/spiderbackup',
    tickIntervalMs: 10_000,
    metricsListen: '127.0.0.1:9797',
    lastTick: {
      reason: 'interval',
      startedAt: '2030-01-01T01:00:00.000Z',
      finishedAt: '2030-01-01T01:00:00.050Z',
      durationMs: 50,
      ok: true,
      error: undefined,
      started: [],
      paused: false,
    },
    lastSuccessfulTickAt: '2030-01-01T01:00:00.050Z',
    lastError: undefined,
    schedule: { cron: '0 3 * * *', spiderHost: true, nextRun: '2030-01-01T03:00:00.000Z', lastRun: undefined },
    instances: [
      {
        port: 20000,
        host: 'h',
        role: 'master',
        file: '/etc/conf.d/dbbackup.20000.ini',
        current: [{ backupId: 'B1', shardValue: 0, status: 'running', taskPid: 77, createdAt: 'c', updatedAt: 'u' }],
        last: undefined,
        error: undefined,
      },
    ],
    configErrors: [],
    journalBacklog: 0,
    ...over,
  };
}

test('status view: running daemon, pause that covers the next scheduled run', () => {
  const now = new Date('2030-01-01T01:00:01Z');
  const v = statusView({
    now,
    stateDir: '/s',
    daemon: { pid: 42, alive: true },
    snapshot: snapshot(),
    snapshotError: undefined,
    pause: { until: '2030-01-02T00:00:00.000Z', reason: 'skip tonight', since: 'x', by: 'alice' },
    pauseError: undefined,
  });
  assert.equal(v.daemon.running, true);
  assert.equal(v.pause.active, true);
  assert.equal(v.schedule.nextRunSkipped, true);
  const text = renderStatusText(v, now);
  assert.match(text, /Daemon: +running \(pid 42\)/);
  assert.match(text, /Paused: +until 2030-01-02T00:00:00.000Z — skip tonight/);
  assert.match(text, /housekeeping, quit handling and journal delivery go on/);
  assert.match(text, /next run 2030-01-01T03:00:00.000Z — SKIPPED: paused then/);
  assert.match(text, /B1 running pid 77/);
});

test('status view: a dead daemon is said to be down; an expired pause is not shown', () => {
  const now = new Date('2030-01-03T00:00:00Z');
  const v = statusView({
    now,
    stateDir: '/s',
    daemon: { pid: 42, alive: false },
    snapshot: snapshot(),
    snapshotError: undefined,
    pause: { until: '2030-01-02T00:00:00.000Z', reason: 'x', since: 'x', by: undefined },
    pauseError: undefined,
  });
  assert.equal(v.daemon.running, false);
  assert.match(v.daemon.note, /NOT RUNNING .* did not stop cleanly/);
  assert.equal(v.pause.active, false);
  assert.equal(v.schedule.nextRun, null, 'nothing fires while the daemon is down');
  const never = statusView({
    now,
    stateDir: '/s',
    daemon: { pid: undefined, alive: false },
    snapshot: undefined,
    snapshotError: undefined,
    pause: undefined,
    pauseError: undefined,
  });
  assert.match(renderStatusText(never, now), /not running \(no status in \/s/);
});

test('status view: a damaged pause file reads as paused, in the view and in the text', () => {
  const now = new Date('2030-01-01T01:00:01Z');
  const v = statusView({
    now,
    stateDir: '/s',
    daemon: { pid: 42, alive: true },
    snapshot: snapshot(),
    snapshotError: undefined,
    pause: undefined,
    pauseError: '/s/pause.json: has no valid "until"; remove it or run `spiderbackup resume`',
  });
  assert.equal(v.pause.active, true);
  const text = renderStatusText(v, now);
  assert.doesNotMatch(text, /Paused: +no/);
  assert.match(text, /Paused: +yes: the pause file is damaged/);
  assert.match(text, /Pause file: +DAMAGED, treated as paused: \/s\/pause.json: has no valid "until"/);
  assert.match(text, /housekeeping, quit handling and journal delivery go on/);
});

test('log filter: by backup id (exact), port, level; plain text only without filters', () => {
  const line = (o: object) => parseLine(JSON.stringify(o));
  const rec = line({ level: 40, backupId: 'B1', port: 20000, msg: 'x' });
  assert.ok(matches(rec, { backupId: 'B1' }));
  assert.ok(!matches(rec, { backupId: 'B' }));
  assert.ok(matches(rec, { port: 20000, minLevel: LEVELS.warn }));
  assert.ok(!matches(rec, { minLevel: LEVELS.error }));
  assert.ok(!matches(line({ level: 30, msg: 'no port' }), { port: 20000 }));
  assert.ok(matches(parseLine('    at foo (bar.js:1:1)'), {}));
  assert.ok(!matches(parseLine('    at foo (bar.js:1:1)'), { minLevel: 30 }));
});

test('log source: -f follows appends, a rename-and-create rotation (no line lost) and a truncation', async () => {
  const d = dir();
  const file = join(d, 'agent.log');
  writeFileSync(file, 'one\ntwo\n');
  const seen: string[] = [];
  const ac = new AbortController();
  let caughtUp = false;
  const reading = readLogFile(file, (l) => seen.push(l), { follow: true, signal: ac.signal, onCaughtUp: () => (caughtUp = true) });
  await until('existing lines', () => caughtUp && seen.length === 2);
  appendFileSync(file, 'three\n');
  await until('appended line', () => seen.length === 3);
  appendFileSync(file, 'four (just before rotation)\n');
  renameSync(file, `${file}.1`);
  writeFileSync(file, 'five (new file)\n');
  await until('rotated file', () => seen.length === 5);
  // copytruncate: shorter than what was read, as it is right after logrotate truncates
  writeFileSync(file, 'six\n');
  await until('truncated file', () => seen.length === 6);
  ac.abort();
  await reading;
  assert.deepEqual(seen, ['one', 'two', 'three', 'four (just before rotation)', 'five (new file)', 'six']);
});

test('config: a bad cron expression is refused at load with file, key and value', () => {
  const d = dir();
  const f = join(d, 'a.ini');
  writeFileSync(f, `[agent]\nstate_dir = ${d}\n[schedule]\ncron = 0 99 * * *\n`);
  assert.throws(
    () => loadDaemonConfig(f),
    (e: unknown) => e instanceof ConfigError && /\[schedule\] cron = "0 99 \* \* \*": not a valid cron expression/.test(e.message),
  );
  assert.equal(cronProblem('0 3 * * *'), undefined);
  assert.equal(cronProblem('*/5 * * * * *'), undefined);
});

test('config: a bad [drill] cron is refused at load with file, key and value', () => {
  const d = dir();
  const f = join(d, 'a.ini');
  writeFileSync(f, `[agent]\nstate_dir = ${d}\n[drill]\ncron = */3 * * * * * *\ntarget = ${join(d, 't.json')}\n`);
  assert.throws(
    () => loadDaemonConfig(f),
    (e: unknown) => e instanceof ConfigError && e.message.startsWith(`${f}: [drill] cron = "*/3 * * * * * *": not a valid cron expression`),
  );
});

test('reload plan: state_dir is kept until a restart; other changes are noticed', () => {
  const d = dir();
  const f = join(d, 'a.ini');
  writeFileSync(f, `[agent]\nstate_dir = ${d}/s1\ntick_interval = 10s\n[metrics]\nlisten = off\n`);
  const old = loadDaemonConfig(f);
  writeFileSync(
    f,
    `[agent]\nstate_dir = ${d}/s2\ntick_interval = 5s\n[schedule]\ncron = 0 3 * * *\n[metrics]\nlisten = off\n[log]\nlevel = debug\n`,
  );
  const plan = planReload(old, loadDaemonConfig(f));
  assert.equal(plan.config.agent.stateDir, `${d}/s1`);
  assert.match(plan.kept[0] as string, /state_dir stays/);
  assert.deepEqual([plan.tickInterval, plan.cron, plan.metrics, plan.logLevel, plan.logFile], [true, true, false, true, false]);
});

test('metrics: own registry, valid exposition, counters move', async () => {
  const a = createMetrics();
  const b = createMetrics(); // a second daemon in one process must not collide
  a.tick(0.05, true, new Date(1_700_000_000_000));
  a.backup('started', 20000);
  a.backup('succeeded', 20000);
  a.tasks(new Map([[20000, [{ status: 'success' }, { status: 'failed: exit code 3' }, { status: 'failed: timeout' }]]]));
  a.paused(true);
  const e = parseExposition(await a.registry.metrics());
  assert.equal(valueOf(e, 'spiderbackup_ticks_total', { result: 'ok' }), 1);
  assert.equal(valueOf(e, 'spiderbackup_tick_duration_seconds_count'), 1);
  assert.equal(valueOf(e, 'spiderbackup_last_successful_tick_timestamp_seconds'), 1_700_000_000);
  assert.equal(valueOf(e, 'spiderbackup_backups_started_total', { port: '20000' }), 1);
  assert.equal(valueOf(e, 'spiderbackup_tasks', { port: '20000', status: 'failed' }), 2);
  assert.equal(valueOf(e, 'spiderbackup_paused'), 1);
  assert.equal(e.types.get('spiderbackup_tick_duration_seconds'), 'histogram');
  assert.ok(e.types.has('process_resident_memory_bytes'));
  assert.equal(valueOf(parseExposition(await b.registry.metrics()), 'spiderbackup_ticks_total'), 0);
  assert.throws(() => parseExposition('spiderbackup_x{a="1} 1\n'), /bad/);
});
