import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseBackups, pointProblems } from '../../src/core/restore-plan-model.js';
import type { RestorePoint } from '../../src/core/restore-point-model.js';
import type { TaskRow } from '../../src/sql/tasks.js';

const point: RestorePoint = {
  name: 'pt',
  takenAt: '2026-11-25 04:00:00.123',
  pauseMs: 10,
  acquireMs: 8,
  holdMs: 2,
  spiderNodes: 2,
  internalXa: true,
  complete: true,
  status: 'taken',
  shards: [
    { serverName: 'SPT0', shardValue: 0, host: 'h0', port: 20000, gtid: '0-1-10' },
    { serverName: 'SPT1', shardValue: 1, host: 'h1', port: 20000, gtid: '0-2-10' },
    { serverName: 'SPT2', shardValue: 2, host: 'h2', port: 20000, gtid: '0-3-10' },
  ],
};

const task = (serverName: string, wrapper: string, shardValue: number, status: string, updatedAt = '2026-11-25 03:00:00'): TaskRow => ({
  serverName,
  wrapper,
  host: `x${serverName}`,
  port: 20000,
  shardValue,
  backupId: 'b',
  status,
  taskPid: -1,
  createdAt: '2026-11-25 02:00:00',
  updatedAt,
  createdAgeS: 0,
  updatedAgeS: 0,
});

test("chooseBackups: the master's backup, else its replica's, else a problem naming the shard", () => {
  const tasks = [
    task('SPT0', 'mysql', 0, 'success'),
    task('SPT_SLAVE0', 'mysql_slave', 0, 'success'),
    task('SPT1', 'mysql', 1, 'failed: timeout'),
    task('SPT_SLAVE1', 'mysql_slave', 1, 'success'),
    task('SPT2', 'mysql', 2, 'failed'),
  ];
  const c = chooseBackups(point, tasks);
  assert.deepEqual(
    c.map((x) => [x.backup?.serverName, x.from]),
    [
      ['SPT0', 'master'],
      ['SPT_SLAVE1', 'replica'],
      [undefined, undefined],
    ],
  );
  assert.match(c[2]!.problem!, /no successful backup of shard 2 \(SPT2\)/);
});

test('pointProblems: missing, opted out, incomplete, or older than a backup', () => {
  assert.deepEqual(pointProblems(undefined, 'x', []), ['no restore point named "x"']);
  assert.match(pointProblems({ ...point, status: 'opted-out' }, 'pt', [])[0]!, /--no-restore-point/);
  assert.match(pointProblems({ ...point, complete: false }, 'pt', [])[0]!, /lacks a shard's row/);
  assert.deepEqual(pointProblems(point, 'pt', [task('SPT0', 'mysql', 0, 'success', '2026-11-25 04:00:00')]), []);
  assert.match(
    pointProblems(point, 'pt', [task('SPT0', 'mysql', 0, 'success', '2026-11-25 04:00:01')])[0]!,
    /is older than the end of SPT0/,
  );
});
