// The target side of a whole-cluster restore, pure parts: what the agent does about a task given
// its state (taskAction), and the restore worker's command line (parse, round trip, recognition).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { taskAction, type RestoreTaskState } from '../../src/recovery/job.js';
import { isWorkerOf, parseWorkerArgs, RESTORER_MARK, workerArgs, WorkerUsageError } from '../../src/recovery/worker-args.js';
import { describeLocalState } from '../../src/recovery/local-state.js';

const state = (over: Partial<RestoreTaskState> = {}): RestoreTaskState => ({
  format: 1,
  restoreId: 'r-20261205-120000',
  target: { host: '127.0.0.7', port: 31001 },
  attempt: 1,
  phase: 'load',
  phases: [{ phase: 'claimed', startedAt: '2026-12-05T12:00:00.000Z' }],
  bytes: 0,
  agent: { host: 'h', pid: 4242, version: '0.1.0' },
  heartbeatAt: '2026-12-05T12:00:10.000Z',
  ...over,
});

test('taskAction: no state, or an older attempt, is claimed', () => {
  assert.deepEqual(
    taskAction({ attempt: 1 }, undefined, () => true),
    { kind: 'claim' },
  );
  assert.deepEqual(
    taskAction({ attempt: 2 }, state({ attempt: 1, phase: 'failed' }), () => true),
    { kind: 'claim' },
  );
  assert.deepEqual(
    taskAction({ attempt: 2 }, state({ attempt: 1, phase: 'replay' }), () => true),
    { kind: 'claim' },
  );
});

test('taskAction: a finished state of this attempt is left alone, whatever the worker', () => {
  for (const phase of ['done', 'failed'] as const)
    assert.deepEqual(
      taskAction({ attempt: 1 }, state({ phase }), () => false),
      { kind: 'finished' },
    );
});

test('taskAction: a running state is running while its worker lives, lost (naming pid, host and phase) when it died', () => {
  const asked: number[] = [];
  assert.deepEqual(
    taskAction({ attempt: 1 }, state(), (pid) => (asked.push(pid), true)),
    { kind: 'running' },
  );
  assert.deepEqual(asked, [4242]);
  const lost = taskAction({ attempt: 1 }, state({ phase: 'replay' }), () => false);
  assert.equal(lost.kind, 'lost');
  assert.match((lost as { why: string }).why, /pid 4242 on h\) died in phase replay/);
});

test('worker arguments: round trip, recognised in a command line, bad ones named', () => {
  const a = {
    agentConfig: '/etc/spiderbackup/spiderbackup.ini',
    restoreId: 'r-20261205-120000',
    target: { host: '10.0.0.7', port: 3306 },
    attempt: 3,
  };
  const argv = workerArgs(a);
  assert.equal(argv[0], RESTORER_MARK);
  assert.deepEqual(parseWorkerArgs(argv), a);
  const cmdline = ['/usr/bin/node', '/opt/sb/dist/src/bin/restorer.js', ...argv];
  assert.equal(isWorkerOf(cmdline, a), true);
  assert.equal(isWorkerOf(cmdline, { ...a, target: { host: '10.0.0.7', port: 3307 } }), false);
  assert.equal(isWorkerOf(cmdline, { ...a, restoreId: 'r-20261205-120001' }), false);
  assert.equal(isWorkerOf(['/usr/bin/node', '/x.js', 'something-else'], a), false);
  assert.equal(isWorkerOf(undefined, a), false);
  assert.throws(
    () => parseWorkerArgs([RESTORER_MARK, '--agent-config=/x', '--restore-id=../x', '--target=h:1', '--attempt=1']),
    WorkerUsageError,
  );
  assert.throws(
    () => parseWorkerArgs([RESTORER_MARK, '--agent-config=/x', '--restore-id=r1', '--target=h', '--attempt=1']),
    /--target must be host:port/,
  );
  assert.throws(
    () => parseWorkerArgs([RESTORER_MARK, '--agent-config=/x', '--restore-id=r1', '--target=h:1', '--attempt=x']),
    /--attempt must be an integer/,
  );
});

test('status line of a task: running, done, failed', () => {
  const now = new Date('2026-12-05T12:00:13.000Z');
  assert.match(
    describeLocalState(state({ bytes: 2048 }), now),
    /^r-20261205-120000 on 127\.0\.0\.7:31001 \(attempt 1\): load, 2\.0 KiB, worker pid 4242, heartbeat 3/,
  );
  assert.match(describeLocalState(state({ phase: 'done', gtid: '0-1-42' }), now), /: done after 10.*, GTID 0-1-42$/);
  assert.match(
    describeLocalState(state({ phase: 'failed', error: '127.0.0.7:31001: in phase load: boom' }), now),
    /: FAILED after .*: 127\.0\.0\.7:31001: in phase load: boom$/,
  );
});
