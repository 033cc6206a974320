import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupPoints, pointTargets, retryDelayMs, rowsOf } from '../../src/cluster/restore-point-model.js';
import type { ServerRow } from '../../src/sql/servers.js';

const srv = (serverName: string, wrapper: string, host: string, port: number): ServerRow => ({
  serverName,
  wrapper,
  host,
  port,
  user: 'u',
  password: 'p',
});

const servers = [
  srv('SPT1', 'mysql', '10.0.0.2', 20000),
  srv('SPT0', 'mysql', '10.0.0.1', 20000),
  srv('SPT_SLAVE0', 'mysql_slave', '10.0.0.3', 20000),
  srv('SPIDER0', 'SPIDER', '10.0.0.9', 25000),
  srv('SPIDER1', 'SPIDER', '10.0.0.10', 25000),
  srv('SPIDER_SLAVE0', 'SPIDER_SLAVE', '10.0.0.11', 25000),
  srv('TDBCTL0', 'TDBCTL', '10.0.0.9', 26000),
];

test('pointTargets: every SPIDER node is blocked (not SPIDER_SLAVE), shard masters by shard', () => {
  const t = pointTargets(servers, srv('SPIDER0', 'SPIDER', '10.0.0.9', 25000));
  assert.deepEqual(
    t.spiders.map((s) => s.serverName),
    ['SPIDER0', 'SPIDER1'],
  );
  assert.deepEqual(
    t.shards.map((s) => [s.serverName, s.shardValue]),
    [
      ['SPT0', 0],
      ['SPT1', 1],
    ],
  );
});

test('pointTargets: the spider master is blocked even when mysql.servers does not list it', () => {
  const t = pointTargets(servers, srv('SPIDER', 'SPIDER', '10.0.0.20', 25001));
  assert.deepEqual(
    t.spiders.map((s) => `${s.host}:${s.port}`),
    ['10.0.0.20:25001', '10.0.0.9:25000', '10.0.0.10:25000'],
  );
});

test('groupPoints: rows become points, newest first; a missing shard row makes a point incomplete', () => {
  const p = {
    name: 'a',
    takenAt: '2026-01-01 00:00:00.000',
    pauseMs: 12,
    acquireMs: 10,
    holdMs: 2,
    spiderNodes: 2,
    internalXa: true,
    complete: true,
    status: 'taken' as const,
    shards: [
      { serverName: 'SPT0', shardValue: 0, host: 'h0', port: 1, gtid: '0-1-5' },
      { serverName: 'SPT1', shardValue: 1, host: 'h1', port: 2, gtid: '0-2-7' },
    ],
  };
  const q = { ...p, name: 'b', takenAt: '2026-01-02 00:00:00.000' };
  const rows = [...rowsOf(p), ...rowsOf(q)].reverse();
  const points = groupPoints(rows);
  assert.deepEqual(
    points.map((x) => x.name),
    ['b', 'a'],
  );
  assert.deepEqual(points[1], p);
  const partial = groupPoints(rowsOf(p).slice(1));
  assert.equal(partial[0]?.complete, false);
});

test('retryDelayMs: doubles from 100 ms, capped at 5 s, with jitter', () => {
  assert.equal(
    retryDelayMs(1, () => 0.5),
    100,
  );
  assert.equal(
    retryDelayMs(3, () => 0.5),
    400,
  );
  assert.equal(
    retryDelayMs(20, () => 0.5),
    5000,
  );
  assert.equal(
    retryDelayMs(1, () => 0),
    75,
  );
});

test('automatic points: auto-YYYYMMDD-HHMMSS in UTC, told apart from other names', async () => {
  const { autoPointName, isAutoPoint } = await import('../../src/cluster/restore-point-model.js');
  assert.equal(autoPointName(new Date('2026-12-05T09:07:03.999Z')), 'auto-20261205-090703');
  assert.ok(isAutoPoint('auto-20261205-090703'));
  for (const n of ['auto-2026', 'nightly-2026-11-25', 'xauto-20261205-090703', 'auto-20261205-090703x']) assert.ok(!isAutoPoint(n), n);
});
