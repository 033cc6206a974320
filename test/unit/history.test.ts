// The state of a backup in `list`, from server-side counts (pure: no cluster).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeSummaries, pageOf, summarize } from '../../src/cluster/history.js';
import type { MasterSideSummary, StatusCounts } from '../../src/sql/history.js';
import { listJson } from '../../src/cli/render/history-view.js';
import { formatDuration } from '../../src/format.js';

const none = { tasks: 0, success: 0, failed: 0, unfinished: 0, stopped: 0, updatedAgeS: 0, updatedAt: '' };
const master = (c: Partial<MasterSideSummary>): MasterSideSummary => ({
  ...none,
  backupId: 'b',
  createdAt: '2026-01-01 00:00:00',
  createdAgeS: 600,
  replicaTasks: 1,
  updatedAgeS: 100,
  updatedAt: '2026-01-01 00:08:20',
  ...c,
});
const replica = (c: Partial<StatusCounts>): StatusCounts => ({
  ...none,
  tasks: 1,
  updatedAgeS: 60,
  updatedAt: '2026-01-01 00:09:00',
  ...c,
});
const cancel = { backupId: 'b', by: 'op@host', at: '2026-01-01 00:05:00' };

test('every task success, the replica read on the replica: complete, ended at the latest update', () => {
  const s = summarize(master({ tasks: 3, success: 3 }), [replica({ success: 1 })]);
  assert.equal(s.state, 'complete');
  assert.deepEqual(s.tasks, { total: 4, success: 4, failed: 0, running: 0, cancelled: 0, unknown: 0 });
  assert.equal(s.endedAt, '2026-01-01 00:09:00');
  assert.equal(s.durationS, 540);
});

test('a task not final: running, with no end', () => {
  const s = summarize(master({ tasks: 3, success: 2, unfinished: 1 }), [replica({ success: 1 })]);
  assert.equal(s.state, 'running');
  assert.equal(s.endedAt, undefined);
});

test('a failed task: failed', () => {
  assert.equal(summarize(master({ tasks: 3, success: 2, failed: 1 }), [replica({ success: 1 })]).state, 'failed');
});

test('a task stopped without a cancel record (12 h expiry, a hand-written quit): failed, counted failed', () => {
  const s = summarize(master({ tasks: 3, success: 3 }), [replica({ stopped: 1 })]);
  assert.equal(s.state, 'failed');
  assert.deepEqual([s.tasks.failed, s.tasks.cancelled], [1, 0]);
});

test('a cancel record: cancelled, never complete, even when every task had succeeded or some still stop', () => {
  assert.equal(summarize(master({ tasks: 3, success: 3 }), [replica({ success: 1 })], cancel).state, 'cancelled');
  const s = summarize(master({ tasks: 3, stopped: 2, unfinished: 1 }), [replica({ stopped: 1 })], cancel);
  assert.equal(s.state, 'cancelled');
  assert.deepEqual(s.tasks, { total: 4, success: 0, failed: 0, running: 1, cancelled: 3, unknown: 0 });
});

test('a replica not read: its task unknown, the backup not complete', () => {
  const s = summarize(master({ tasks: 3, success: 3 }), []);
  assert.equal(s.state, 'unknown');
  assert.equal(s.tasks.unknown, 1);
});

test('a status outside the known classes counts as failed', () => {
  const s = summarize(master({ tasks: 3, success: 2 }), [replica({ success: 1 })]);
  assert.deepEqual([s.state, s.tasks.failed], ['failed', 1]);
});

test('JSON rows carry backupId and state; durations read as h/m/s', () => {
  const [row] = listJson([summarize(master({ tasks: 3, success: 3 }), [replica({ success: 1 })])]);
  assert.equal(row?.backupId, 'b');
  assert.equal(row?.state, 'complete');
  assert.equal(formatDuration(3725_000), '1h02m05s');
  assert.equal(formatDuration(65_000), '1m05s');
  assert.equal(formatDuration(7_000), '7.0 s');
});

test("away from the primary: each shard master's counts summed as the Spider table's GROUP BY would", () => {
  // Shard 0's master holds the spider master's and its own task and the replica's copy; shard 1's its own.
  const shard0 = master({ tasks: 2, success: 2, replicaTasks: 1, createdAt: '2026-01-01 00:00:01', createdAgeS: 599 });
  const shard1 = master({ tasks: 1, success: 0, failed: 1, replicaTasks: 0, updatedAt: '2026-01-01 00:09:30', updatedAgeS: 30 });
  const onlyCopy = master({ backupId: 'c', tasks: 0, replicaTasks: 1, updatedAt: '', updatedAgeS: 0 });
  const [b, c] = mergeSummaries([shard0, onlyCopy, shard1]);
  assert.deepEqual(b, {
    ...none,
    backupId: 'b',
    createdAt: '2026-01-01 00:00:00',
    createdAgeS: 600,
    replicaTasks: 1,
    tasks: 3,
    success: 2,
    failed: 1,
    updatedAt: '2026-01-01 00:09:30',
    updatedAgeS: 30,
  });
  assert.equal(c?.tasks, 0);
  assert.equal(c?.updatedAt, '');
});

test('the page of merged counts: newest first, then id descending; only all-success ids when asked', () => {
  const all = [
    master({ backupId: 'old', createdAt: '2026-01-01 00:00:00', tasks: 3, success: 3 }),
    master({ backupId: 'new', createdAt: '2026-01-02 00:00:00', tasks: 3, success: 2, failed: 1 }),
    master({ backupId: 'new2', createdAt: '2026-01-02 00:00:00', tasks: 3, success: 3 }),
  ];
  assert.deepEqual(
    pageOf(all, { limit: 2 }).map((s) => s.backupId),
    ['new2', 'new'],
  );
  assert.deepEqual(
    pageOf(all, { limit: 2, offset: 2 }).map((s) => s.backupId),
    ['old'],
  );
  assert.deepEqual(
    pageOf(all, { limit: 5, onlyAllSuccess: true }).map((s) => s.backupId),
    ['new2', 'old'],
  );
});
