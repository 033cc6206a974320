import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, type TaskFacts } from '../../src/check/decide.js';
import { clockStepS, clockStepThresholdS } from '../../src/check/clock-step.js';
import type { LocalState } from '../../src/host/local-view.js';
import { pickWork } from '../../src/check/pick.js';
import { exitStatus, statusClass } from '../../src/task/status.js';
import { LIMITS, type TaskRow } from '../../src/task/task.js';

const row = (over: Partial<TaskRow> = {}): TaskRow => ({
  serverName: 'SPT0',
  wrapper: 'mysql',
  host: 'h',
  port: 20000,
  shardValue: 0,
  backupId: 'b1',
  status: 'running',
  taskPid: 100,
  createdAt: '2026-01-01 00:00:00',
  updatedAt: '2026-01-01 00:00:00',
  createdAgeS: 10,
  updatedAgeS: 10,
  ...over,
});
const target = { supervisorPid: 100, pids: [101] };
const running = (over: Partial<{ supervisorPid: number; restorable: boolean }> = {}): LocalState => ({
  kind: 'running',
  supervisorPid: 100,
  restorable: true,
  target,
  ...over,
});
const facts = (over: Partial<TaskFacts> = {}): TaskFacts => ({
  local: { kind: 'none' },
  pid: { kind: 'none' },
  journalPending: false,
  ...over,
});

test('a running row whose backup runs here: nothing to do, or its pid repaired, or killed after 48 h', () => {
  assert.deepEqual(decide(row(), facts({ local: running() })), { kind: 'none' });
  assert.deepEqual(decide(row({ taskPid: -1 }), facts({ local: running() })), { kind: 'repair', pid: 100 });
  assert.deepEqual(decide(row({ updatedAgeS: LIMITS.runningTimeoutS + 1 }), facts({ local: running() })), { kind: 'timeout', target });
  assert.deepEqual(decide(row({ updatedAgeS: LIMITS.runningTimeoutS }), facts({ local: running() })), { kind: 'none' });
});

test('the host wins: any other status over a row whose backup runs here is restored to running', () => {
  for (const status of ['replicated', 'init', 'success', 'failed: process does not exist', 'cancel']) {
    assert.deepEqual(decide(row({ status, taskPid: -1 }), facts({ local: running() })), { kind: 'repair', pid: 100 }, status);
  }
  // without a record saying the backup runs, its supervisor may be writing the final status
  assert.deepEqual(decide(row({ status: 'success' }), facts({ local: running({ restorable: false }) })), { kind: 'none' });
  assert.deepEqual(decide(row({ status: 'success' }), facts({ local: { kind: 'finishing', supervisorPid: 100, target } })), {
    kind: 'none',
  });
  assert.deepEqual(decide(row(), facts({ local: { kind: 'finishing', supervisorPid: 100, target } })), { kind: 'none' });
});

test('quit kills what runs here even when the row lost its pid; otherwise there is nothing to kill', () => {
  assert.deepEqual(decide(row({ status: 'quit', taskPid: -1 }), facts({ local: running() })), { kind: 'kill-quit', target });
  assert.deepEqual(decide(row({ status: 'quit' }), facts({ local: { kind: 'orphaned', target } })), { kind: 'kill-quit', target });
  assert.deepEqual(decide(row({ status: 'quit' }), facts({ pid: { kind: 'gone' } })), { kind: 'quit-no-process' });
  assert.deepEqual(decide(row({ status: 'quit' }), facts({ pid: { kind: 'foreign' } })), { kind: 'quit-no-process' });
  assert.deepEqual(decide(row({ status: 'quit' }), facts({ pid: { kind: 'legacy' } })), { kind: 'kill-quit', target: { pids: [100] } });
});

test('a supervisor that died leaves a backup nobody can report: killed and failed, never guessed', () => {
  const orphaned: LocalState = { kind: 'orphaned', target: { pids: [101] } };
  assert.deepEqual(decide(row(), facts({ local: orphaned })), { kind: 'kill-orphan', target: { pids: [101] } });
  assert.deepEqual(decide(row({ status: 'replicated' }), facts({ local: orphaned })), { kind: 'kill-orphan', target: { pids: [101] } });
});

test('a running row with nothing of it on this host', () => {
  assert.deepEqual(decide(row(), facts({ pid: { kind: 'gone' } })), { kind: 'fail', status: 'failed: process does not exist' });
  assert.deepEqual(decide(row(), facts({ pid: { kind: 'foreign' } })), { kind: 'fail', status: 'failed: cmdline has no backup-id' });
  assert.deepEqual(decide(row({ taskPid: -1, updatedAgeS: 5 }), facts()), { kind: 'none' });
  assert.deepEqual(decide(row({ taskPid: -1, updatedAgeS: 3600 }), facts()), { kind: 'fail', status: 'failed: no pid' });
  // the old tool's backup (mysql-crond during a migration) is left to run, up to 48 h
  assert.deepEqual(decide(row(), facts({ pid: { kind: 'legacy' } })), { kind: 'none' });
  assert.deepEqual(decide(row({ updatedAgeS: LIMITS.runningTimeoutS + 1 }), facts({ pid: { kind: 'legacy' } })), {
    kind: 'timeout',
    target: { pids: [100] },
  });
  // a final status waiting in the journal wins over everything
  assert.deepEqual(decide(row(), facts({ pid: { kind: 'gone' }, journalPending: true })), { kind: 'none' });
});

test('expiry of tasks nobody started', () => {
  for (const status of ['init', 'replicated']) {
    assert.deepEqual(decide(row({ status, createdAgeS: LIMITS.waitingExpiryS + 1 }), facts()), { kind: 'expire' });
    assert.deepEqual(decide(row({ status, createdAgeS: 60 }), facts()), { kind: 'none' });
  }
  for (const status of ['success', 'failed: timeout', 'quit: success', 'cancel'])
    assert.deepEqual(decide(row({ status, createdAgeS: 1e9 }), facts({ pid: { kind: 'gone' } })), { kind: 'none' });
});

test('pick: one running id per machine, earliest id first, instances in port order', () => {
  const a1 = row({ backupId: 'A', status: 'init', port: 20001, createdAgeS: 100 });
  const a0 = row({ backupId: 'A', status: 'replicated', port: 20000, createdAgeS: 100 });
  const b0 = row({ backupId: 'B', status: 'init', port: 20000, createdAgeS: 50 });
  const done = row({ backupId: 'Z', status: 'success', port: 20000, createdAgeS: 1000 });
  assert.deepEqual(pickWork([b0, a1, a0, done]), { kind: 'run', backupId: 'A', tasks: [a0, a1] });
  assert.deepEqual(pickWork([b0, a1, a0], 'B'), { kind: 'run', backupId: 'B', tasks: [b0] });
  const running = row({ backupId: 'A', status: 'running', port: 20002 });
  assert.deepEqual(pickWork([b0, a1, running]), { kind: 'busy', running: [running] });
  assert.deepEqual(pickWork([done]), { kind: 'idle' });
  assert.deepEqual(pickWork([b0], 'nope'), { kind: 'idle' });
});

test('status strings', () => {
  assert.equal(exitStatus(0, null), 'success');
  assert.equal(exitStatus(3, null), 'failed: exit code 3');
  assert.equal(exitStatus(null, 'SIGKILL'), 'failed: killed by SIGKILL');
  assert.equal(exitStatus(null, null, 'ENOENT'), 'failed: cannot start ENOENT');
  assert.equal(statusClass('failed: timeout'), 'failed');
  assert.equal(statusClass('running'), 'running');
});

test('a step of the database clock: every decision by age waits one more look; the others do not', () => {
  const stepped = (over: Partial<TaskFacts> = {}) => facts({ clockStepped: true, ...over });
  const old = LIMITS.runningTimeoutS + 1;
  // 49 h: a running backup here is not killed, nor the old tool's.
  assert.deepEqual(decide(row({ updatedAgeS: old }), stepped({ local: running() })), { kind: 'none' });
  assert.deepEqual(decide(row({ updatedAgeS: old }), stepped({ pid: { kind: 'legacy' } })), { kind: 'none' });
  // 13 h: a waiting task does not expire; a running row without a pid keeps its claim grace.
  for (const status of ['init', 'replicated'])
    assert.deepEqual(decide(row({ status, createdAgeS: LIMITS.waitingExpiryS + 1 }), stepped()), { kind: 'none' });
  assert.deepEqual(decide(row({ taskPid: 0, updatedAgeS: LIMITS.claimGraceS + 1 }), stepped()), { kind: 'none' });
  // What the host says is not an age: it is acted on at once.
  assert.deepEqual(decide(row(), stepped({ pid: { kind: 'gone' } })).kind, 'fail');
  assert.deepEqual(decide(row({ status: 'quit' }), stepped()), { kind: 'quit-no-process' });
  assert.deepEqual(decide(row({ status: 'running', taskPid: 1 }), stepped({ local: { kind: 'orphaned', target } })).kind, 'kill-orphan');
  // The next look, with no step, decides by age as before.
  assert.deepEqual(decide(row({ status: 'init', createdAgeS: LIMITS.waitingExpiryS + 1 }), facts({ clockStepped: false })), {
    kind: 'expire',
  });
});

test('clock step: measured from rows seen at both looks against the monotonic clock', () => {
  const look = (atMs: number, ages: Record<string, number>) => ({ atMs, ages: new Map(Object.entries(ages)) });
  assert.equal(clockStepS(undefined, look(0, { a: 5 })), undefined, 'no last look (the CLI)');
  assert.equal(clockStepS(look(0, { a: 5 }), look(10_000, { b: 3 })), undefined, 'no row seen twice');
  assert.equal(clockStepS(look(0, { a: 5 }), look(10_000, { a: 15 })), 0);
  assert.equal(clockStepS(look(0, { a: 5 }), look(10_000, { a: 5 + 10 + 13 * 3600 })), 13 * 3600);
  assert.equal(clockStepS(look(0, { a: 5 * 3600 }), look(1_000, { a: 3600 + 1 })), -4 * 3600);
  assert.equal(clockStepThresholdS(10_000), 30, 'a few ticks, never under 30 s');
  assert.equal(clockStepThresholdS(60_000), 180);
});
