import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseBackups, describeFiles, pointProblems, purgedFiles, startPositionOf } from '../../src/restore/plan-model.js';
import type { Manifest } from '../../src/runner/manifest.js';
import type { RestorePoint } from '../../src/cluster/restore-point-model.js';
import type { TaskRow } from '../../src/task/task.js';

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

const manifest = (m: Partial<Manifest>): Manifest =>
  ({ tool: { name: 'mariadb-backup', version: '' }, position: {}, ...m }) as unknown as Manifest;

test("startPositionOf: a master's own position; a replica's master position; none is a problem", () => {
  assert.deepEqual(startPositionOf(manifest({ position: { binlogFile: 'mysql-bin.000003', binlogPos: 77, gtid: '0-1-9' } }), 'master'), {
    gtid: '0-1-9',
    binlogFile: 'mysql-bin.000003',
    binlogPos: 77,
  });
  // The replica's own binlog position is not the master's: only masterPosition counts.
  const replica = manifest({ position: { gtid: '0-1-9,1-5-3' }, masterPosition: { binlogFile: 'mysql-bin.000007', binlogPos: 385 } });
  assert.deepEqual(startPositionOf(replica, 'replica'), { binlogFile: 'mysql-bin.000007', binlogPos: 385 });
  assert.match(startPositionOf(manifest({ position: { gtid: '0-1-9' } }), 'replica').problem ?? '', /records no master position/);
  assert.match(startPositionOf(manifest({}), 'master').problem ?? '', /records no binlog position/);
});

test('purgedFiles names every file from the backup position to the oldest kept', () => {
  assert.deepEqual(purgedFiles('mysql-bin.000008', 'mysql-bin.000011'), ['mysql-bin.000008', 'mysql-bin.000009', 'mysql-bin.000010']);
  assert.deepEqual(purgedFiles('mysql-bin.000011', 'mysql-bin.000011'), []);
  assert.deepEqual(purgedFiles('a.000001', 'b.000003'), ['a.000001']);
  assert.equal(describeFiles(purgedFiles('mysql-bin.000001', 'mysql-bin.000100')), 'mysql-bin.000001 … mysql-bin.000099 (99 files)');
  assert.equal(describeFiles(['x.1', 'x.2']), 'x.1 x.2');
});
