import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, LIMITS, type TaskFacts } from '../../src/core/decide.js';
import { pickWork } from '../../src/core/pick.js';
import { exitStatus, statusClass } from '../../src/core/status.js';
import type { TaskRow } from '../../src/sql/tasks.js';

const row = (over: Partial<TaskRow> = {}): TaskRow => ({
  serverName: 'SPT0', wrapper: 'mysql', host: 'h', port: 20000, shardValue: 0, backupId: 'b1', status: 'running',
  taskPid: 100, createdAt: '2026-01-01 00:00:00', updatedAt: '2026-01-01 00:00:00', createdAgeS: 10, updatedAgeS: 10, ...over,
});
const facts = (over: Partial<TaskFacts> = {}): TaskFacts => ({ process: { kind: 'alive' }, supervisorPid: undefined, journalPending: false, ...over });

test('running tasks', () => {
  assert.deepEqual(decide(row(), facts()), { kind: 'none' });
  assert.deepEqual(decide(row(), facts({ process: { kind: 'gone' } })), { kind: 'fail', status: 'failed: process does not exist' });
  assert.deepEqual(decide(row(), facts({ process: { kind: 'foreign' } })), { kind: 'fail', status: 'failed: cmdline has no backup-id' });
  assert.deepEqual(decide(row({ updatedAgeS: LIMITS.runningTimeoutS + 1 }), facts()), { kind: 'timeout', pid: 100 });
  assert.deepEqual(decide(row({ updatedAgeS: LIMITS.runningTimeoutS }), facts()), { kind: 'none' });
  // TaskPid -1: only "no pid" after the claim grace, and never while its supervisor lives
  assert.deepEqual(decide(row({ taskPid: -1, updatedAgeS: 5 }), facts({ process: { kind: 'none' } })), { kind: 'none' });
  assert.deepEqual(decide(row({ taskPid: -1, updatedAgeS: 3600 }), facts({ process: { kind: 'none' } })), { kind: 'fail', status: 'failed: no pid' });
  assert.deepEqual(decide(row({ taskPid: -1, updatedAgeS: 3600 }), facts({ process: { kind: 'none' }, supervisorPid: 7 })), { kind: 'adopt', pid: 7 });
  // a fresh claim is the supervisor's to record, even when another check already sees it
  assert.deepEqual(decide(row({ taskPid: -1, updatedAgeS: 1 }), facts({ process: { kind: 'none' }, supervisorPid: 7 })), { kind: 'none' });
  // a final status waiting in the journal wins over everything
  assert.deepEqual(decide(row(), facts({ process: { kind: 'gone' }, journalPending: true })), { kind: 'none' });
});

test('quit and expiry', () => {
  assert.deepEqual(decide(row({ status: 'quit' }), facts()), { kind: 'kill-quit', pid: 100 });
  assert.deepEqual(decide(row({ status: 'quit' }), facts({ process: { kind: 'gone' } })), { kind: 'quit-no-process' });
  assert.deepEqual(decide(row({ status: 'quit' }), facts({ process: { kind: 'foreign' } })), { kind: 'quit-no-process' });
  for (const status of ['init', 'replicated']) {
    assert.deepEqual(decide(row({ status, createdAgeS: LIMITS.waitingExpiryS + 1 }), facts()), { kind: 'expire' });
    assert.deepEqual(decide(row({ status, createdAgeS: 60 }), facts()), { kind: 'none' });
  }
  for (const status of ['success', 'failed: timeout', 'quit: success', 'cancel']) assert.deepEqual(decide(row({ status, createdAgeS: 1e9 }), facts({ process: { kind: 'gone' } })), { kind: 'none' });
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
