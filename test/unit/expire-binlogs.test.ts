// Which archived binlog files `expire` removes: only files wholly at or before the start of every
// kept backup of their shard (by GTID, or by file name on the backup's own server), closed ones,
// none a kept point before those backups needs; a shard without a kept backup keeps everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ArchivedFile, Segment } from '../../src/archive/archive-index.js';
import type { RestorePoint } from '../../src/cluster/restore-point-model.js';
import { fileBefore, judgeShardBinlogs, shardStartOf, type ShardStart } from '../../src/restore/expire-binlogs.js';
import type { Manifest } from '../../src/runner/manifest.js';
import { segmentOf } from '../support/archive-fixtures.js';

const seg = (offset: number, length: number, startGtid: string, endGtid: string): Segment => segmentOf(offset, length, startGtid, endGtid);

const file = (name: string, start: string, end: string, closed = true, host = 'h1', port = 3306): ArchivedFile => ({
  format: 1,
  shard: 0,
  host,
  port,
  serverId: 1,
  file: name,
  fileStart: start,
  closed,
  segments: [seg(0, 100, start, end)],
  folder: `c1/binlogs/shard-0/${host}_${port}/${name}~t/`,
  missing: [],
});

const f1 = file('mysql-bin.000001', '', '0-1-10');
const f2 = file('mysql-bin.000002', '0-1-10', '0-1-20');
const f3 = file('mysql-bin.000003', '0-1-20', '0-1-30');
const f4 = file('mysql-bin.000004', '0-1-30', '0-1-35', false);
const files = [f1, f2, f3, f4];

const start = (backupId: string, gtid: string, extra: Partial<ShardStart> = {}): ShardStart => ({
  backupId,
  gtid,
  gtidExact: true,
  ...extra,
});

test('a file goes when its last event is at or before every kept backup start; an open file never', () => {
  const v = judgeShardBinlogs(0, files, [start('b2', '0-1-25'), start('b3', '0-1-34')], []);
  assert.deepEqual(
    v.map((x) => [x.file.file, x.go]),
    [
      ['mysql-bin.000001', true],
      ['mysql-bin.000002', true],
      ['mysql-bin.000003', false],
      ['mysql-bin.000004', false],
    ],
  );
  // At the position exactly: every event of the file is in the backup.
  assert.equal(judgeShardBinlogs(0, [f2], [start('b', '0-1-20')], [])[0]?.go, true);
  assert.equal(judgeShardBinlogs(0, [f4], [start('b', '0-1-99')], [])[0]?.go, false, 'not closed');
});

test('no kept backup of the shard, or one without a position: everything stays', () => {
  assert.ok(judgeShardBinlogs(0, files, [], []).every((v) => !v.go));
  assert.ok(judgeShardBinlogs(0, files, [start('b', '0-1-99'), 'unknown'], []).every((v) => !v.go));
});

test("the backup's own server compares by file name (a dump's GTID is read after its snapshot); other servers by GTID", () => {
  const own = { server: { host: 'h1', port: 3306 }, binlogFile: 'mysql-bin.000003' };
  assert.equal(fileBefore(f2, start('d', '0-1-99', { ...own, gtidExact: false })), true);
  assert.equal(fileBefore(f3, start('d', '0-1-99', { ...own, gtidExact: false })), false, 'the file holding the position');
  const other = file('mysql-bin.000009', '', '0-1-5', true, 'h0', 3306);
  assert.equal(fileBefore(other, start('d', '0-1-99', { ...own, gtidExact: false })), true);
  // A replica's file/offset alone names no server: nothing can be told.
  assert.equal(fileBefore(f1, { backupId: 'r', binlogFile: 'mysql-bin.000003', gtidExact: true }), false);
});

test('a kept point before the kept backups holds back the files that begin before it', () => {
  const point = (name: string, gtid: string): RestorePoint => ({
    name,
    takenAt: '2026-01-01 00:00:00.000',
    pauseMs: 1,
    acquireMs: 1,
    holdMs: 0,
    spiderNodes: 1,
    internalXa: true,
    complete: true,
    status: 'taken',
    shards: [{ serverName: 'SPT0', shardValue: 0, host: 'h1', port: 3306, gtid }],
  });
  const v = judgeShardBinlogs(0, files, [start('b', '0-1-30')], [point('by-hand', '0-1-15')]);
  assert.deepEqual(
    v.map((x) => x.go),
    [false, false, true, false],
  );
  assert.match(v[0]!.why, /restore point by-hand/);
  // A point after the backups needs nothing before them.
  assert.deepEqual(
    judgeShardBinlogs(0, files, [start('b', '0-1-30')], [point('later', '0-1-33')]).map((x) => x.go),
    [true, true, true, false],
  );
});

test("a shard's start in a backup: its master's manifest, else its replica's master position", () => {
  const m = (role: string, extra: Partial<Manifest>): Manifest =>
    ({ role, shardValue: 0, host: 'h', port: 1, tool: { name: 'mariadb-backup', version: '' }, position: {}, ...extra }) as Manifest;
  const master = m('master', { host: 'h1', port: 3306, position: { gtid: '0-1-5', binlogFile: 'mysql-bin.000002', binlogPos: 4 } });
  const replica = m('slave', { host: 'h2', port: 3306, masterPosition: { gtid: '0-1-3' } });
  assert.deepEqual(shardStartOf('b', [replica, master], 0), {
    backupId: 'b',
    server: { host: 'h1', port: 3306 },
    gtid: '0-1-5',
    binlogFile: 'mysql-bin.000002',
    gtidExact: true,
  });
  assert.deepEqual(shardStartOf('b', [replica], 0), { backupId: 'b', gtid: '0-1-3', gtidExact: true });
  assert.equal(shardStartOf('b', [master], 1), undefined);
  assert.equal(shardStartOf('b', [m('slave', {})], 0), 'unknown');
});
