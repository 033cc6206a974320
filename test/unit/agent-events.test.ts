// The agent's typed events and their subscribers: metrics follow what is emitted, the CLI's default
// subscriber logs every problem, and the tracker turns supervisor records into duration and bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createAgentEvents, logEveryProblem } from '../../src/check/events.js';
import { attachMetrics, createMetrics, DROPPED_DEFAULT_METRICS } from '../../src/daemon/metrics.js';
import { createTracker, lastSuccessAt, measured, noteRecords, noteStarted, prune } from '../../src/daemon/backup-tracker.js';
import { parseExposition, valueOf } from '../support/prom.js';
import { taskKeyString, type TaskRow } from '../../src/task/task.js';

const task = (port: number, over: Partial<TaskRow> = {}): TaskRow => ({
  backupId: 'b1',
  host: '127.0.0.1',
  port,
  shardValue: 0,
  serverName: 'SPT0',
  wrapper: 'mysql',
  status: 'running',
  taskPid: 42,
  createdAt: '2026-11-25 03:00:00',
  updatedAt: '2026-11-25 03:00:00',
  createdAgeS: 0,
  updatedAgeS: 0,
  ...over,
});

test('metrics subscribe to the events: each event moves exactly its metric', async () => {
  const events = createAgentEvents();
  const metrics = createMetrics();
  attachMetrics(events, metrics);
  const t = task(20000);
  events.emit('started', { task: t, pid: 1, done: Promise.resolve(0) });
  events.emit('killed', { task: t, reason: 'quit' });
  events.emit('expired', { task: t });
  events.emit('failed', { task: t, status: 'failed: no pid' });
  events.emit('deleted', { port: 20000, count: 7 });
  events.emit('finished', { task: { ...t, status: 'success' }, outcome: 'success', role: 'master', durationS: 12.5, bytes: 4096 });
  events.emit('finished', {
    task: task(20001, { status: 'failed: exit code 1' }),
    outcome: 'failed',
    role: 'slave',
    durationS: 3,
    bytes: undefined,
  });
  const e = parseExposition(await metrics.registry.metrics());
  assert.equal(valueOf(e, 'spiderbackup_backups_started_total', { port: '20000' }), 1);
  assert.equal(valueOf(e, 'spiderbackup_backups_killed_total', { port: '20000' }), 1);
  assert.equal(valueOf(e, 'spiderbackup_backups_succeeded_total', { port: '20000' }), 1);
  assert.equal(valueOf(e, 'spiderbackup_backups_failed_total', { port: '20001' }), 1);
  assert.equal(valueOf(e, 'spiderbackup_housekeeping_actions_total', { action: 'expired' }), 1);
  assert.equal(valueOf(e, 'spiderbackup_housekeeping_actions_total', { action: 'failed' }), 1);
  assert.equal(valueOf(e, 'spiderbackup_housekeeping_actions_total', { action: 'deleted' }), 7);
  assert.equal(valueOf(e, 'spiderbackup_last_backup_duration_seconds', { port: '20000', role: 'master' }), 12.5);
  assert.equal(valueOf(e, 'spiderbackup_last_backup_bytes', { port: '20000', role: 'master' }), 4096);
  assert.equal(valueOf(e, 'spiderbackup_last_backup_duration_seconds', { port: '20001', role: 'slave' }), 3);
  // Unknown bytes are no sample, not a zero.
  assert.ok(!e.samples.some((s) => s.name === 'spiderbackup_last_backup_bytes' && s.labels.port === '20001'));
});

test("the default metrics that break Prometheus' naming rules are not exposed", async () => {
  const text = await createMetrics().registry.metrics();
  for (const name of DROPPED_DEFAULT_METRICS) assert.ok(!text.includes(`${name} `) && !text.includes(`# TYPE ${name}`), name);
  assert.ok(text.includes('# TYPE nodejs_active_handles gauge'));
});

test('instance gauges: last success, running and bytes, replaced every tick', async () => {
  const metrics = createMetrics();
  metrics.instanceGauges([
    { port: 20000, role: 'master', running: true, runningBytes: 100, lastSuccessAt: 1_700_000_000, up: true },
    { port: 20001, role: 'slave', running: false, runningBytes: undefined, lastSuccessAt: null, up: true },
    { port: 20002, role: 'slave', running: false, runningBytes: undefined, lastSuccessAt: undefined, up: false },
  ]);
  let e = parseExposition(await metrics.registry.metrics());
  assert.equal(valueOf(e, 'spiderbackup_last_success_timestamp_seconds', { port: '20000', role: 'master' }), 1_700_000_000);
  assert.equal(valueOf(e, 'spiderbackup_last_success_timestamp_seconds', { port: '20001', role: 'slave' }), 0);
  // Not read yet (instance down since the start): no sample rather than a false "never".
  assert.ok(!e.samples.some((s) => s.name === 'spiderbackup_last_success_timestamp_seconds' && s.labels.port === '20002'));
  assert.equal(valueOf(e, 'spiderbackup_backup_running', { port: '20000' }), 1);
  assert.equal(valueOf(e, 'spiderbackup_backup_running_bytes', { port: '20000' }), 100);
  assert.equal(valueOf(e, 'spiderbackup_instance_up', { port: '20000', role: 'master' }), 1);
  assert.equal(valueOf(e, 'spiderbackup_instance_up', { port: '20002', role: 'slave' }), 0);
  assert.ok(
    e.samples.some((s) => s.name === 'spiderbackup_instance_up' && s.labels.port === '20002'),
    'down is a 0 sample, not none',
  );
  metrics.instanceGauges([{ port: 20001, role: 'slave', running: false, runningBytes: undefined, lastSuccessAt: 5, up: true }]);
  e = parseExposition(await metrics.registry.metrics());
  assert.ok(!e.samples.some((s) => s.labels.port === '20000' && s.name.startsWith('spiderbackup_backup_running')));
  assert.ok(!e.samples.some((s) => s.labels.port === '20002' && s.name === 'spiderbackup_instance_up'), 'no longer served: gone');
});

test('every per-port backup counter has a 0 sample for each served port before any event', async () => {
  const metrics = createMetrics();
  let e = parseExposition(await metrics.registry.metrics());
  assert.ok(!e.samples.some((s) => s.name === 'spiderbackup_backups_failed_total'));
  metrics.served([20000, 20001]);
  metrics.served([20000, 20001]);
  e = parseExposition(await metrics.registry.metrics());
  for (const event of ['started', 'succeeded', 'failed', 'killed'])
    for (const port of ['20000', '20001']) {
      const s = e.samples.filter((x) => x.name === `spiderbackup_backups_${event}_total` && x.labels.port === port);
      assert.deepEqual(
        s.map((x) => x.value),
        [0],
        `${event} ${port}`,
      );
    }
  metrics.backup('failed', 20000);
  metrics.served([20000, 20001]);
  e = parseExposition(await metrics.registry.metrics());
  assert.equal(valueOf(e, 'spiderbackup_backups_failed_total', { port: '20000' }), 1, 'served() never resets a count');
});

test('without a subscriber of its own, a CLI run logs every problem, each time', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const events = logEveryProblem(createAgentEvents(), pino(sink));
  events.emit('problem', { key: 'k', fields: { port: 1 }, msg: 'instance skipped this round' });
  events.emit('problem', { key: 'k', fields: { port: 1 }, msg: 'instance skipped this round' });
  assert.equal(lines.length, 2);
  assert.match(lines[0] as string, /instance skipped this round/);
});

test('the tracker: duration and bytes from the supervisor record, the start event as fallback, last success fixed once', () => {
  const t = createTracker();
  const k = task(20000);
  noteStarted(t, k, 1_000);
  assert.deepEqual(measured(t, k, 4_000), { durationS: 3, bytes: undefined });
  noteRecords(t, [
    {
      key: k,
      supervisorPid: 9,
      startedAt: new Date(2_000).toISOString(),
      phase: 'finished',
      finishedAt: new Date(12_000).toISOString(),
      bytes: 555,
      bytesAt: new Date(12_000).toISOString(),
    },
  ]);
  assert.deepEqual(measured(t, k, 99_000), { durationS: 10, bytes: 555 });
  prune(t, new Set(), new Set());
  assert.deepEqual(measured(t, k, 99_000), { durationS: undefined, bytes: undefined });

  assert.equal(lastSuccessAt(t, 'f.ini', 1_000_000), undefined);
  t.lastSuccess.set('f.ini', undefined);
  assert.equal(lastSuccessAt(t, 'f.ini', 1_000_000), null);
  t.lastSuccess.set('f.ini', task(20000, { status: 'success', updatedAgeS: 60 }));
  assert.equal(lastSuccessAt(t, 'f.ini', 1_000_000), 940);
  // The row read once keeps its old age: the time does not drift with later ticks.
  assert.equal(lastSuccessAt(t, 'f.ini', 2_000_000), 940);
  t.lastSuccess.set('f.ini', task(20000, { backupId: 'b2', status: 'success', updatedAgeS: 0 }));
  assert.equal(lastSuccessAt(t, 'f.ini', 2_000_000), 2000);
  assert.equal(taskKeyString(k), taskKeyString({ ...k }));
});
