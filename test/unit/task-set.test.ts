import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTaskSet, TaskSetError } from '../../src/cluster/task-set.js';
import { validateBackupId } from '../../src/task/backup-id.js';
import type { ServerRow } from '../../src/sql/servers.js';

const srv = (serverName: string, wrapper: string, host: string, port: number): ServerRow => ({
  serverName,
  wrapper,
  host,
  port,
  user: 'u',
  password: 'p',
});
const spider = { host: '10.0.0.9', port: 25000 };

test('spider master, one init per SPT<n>, one replicated per SPT_SLAVE<n>; others skipped', () => {
  const set = buildTaskSet(
    [
      srv('SPT1', 'mysql', '10.0.0.2', 20000),
      srv('SPT0', 'mysql', '10.0.0.1', 20000),
      srv('SPT_SLAVE0', 'mysql_slave', '10.0.0.3', 20000),
      srv('SPT_SLAVE1', 'mysql_slave', '10.0.0.4', 20000),
      srv('SPIDER0', 'SPIDER', '10.0.0.9', 25000),
      srv('SPIDER1', 'SPIDER', '10.0.0.8', 25000),
      srv('TDBCTL0', 'TDBCTL', '10.0.0.9', 26000),
    ],
    spider,
    'b1',
  );
  assert.equal(set.shards, 2);
  assert.deepEqual(
    set.tasks.map((t) => [t.serverName, t.wrapper, `${t.host}:${t.port}`, t.shardValue, t.status]),
    [
      ['SPIDER0', 'SPIDER', '10.0.0.9:25000', 0, 'init'],
      ['SPT0', 'mysql', '10.0.0.1:20000', 0, 'init'],
      ['SPT1', 'mysql', '10.0.0.2:20000', 1, 'init'],
      ['SPT_SLAVE0', 'mysql_slave', '10.0.0.3:20000', 0, 'replicated'],
      ['SPT_SLAVE1', 'mysql_slave', '10.0.0.4:20000', 1, 'replicated'],
    ],
  );
  assert.ok(set.tasks.every((t) => t.backupId === 'b1'));
});

test('deduplicated by Host:Port, masters preferred', () => {
  const set = buildTaskSet([srv('SPT_SLAVE0', 'mysql_slave', 'h', 1), srv('SPT0', 'mysql', 'h', 1)], spider, 'b');
  assert.deepEqual(
    set.tasks.map((t) => t.serverName),
    ['SPIDER', 'SPT0'],
  );
});

test('unknown Server_name / wrapper, gaps and orphans are clear errors', () => {
  assert.throws(
    () => buildTaskSet([srv('SPT0', 'mysql', 'h', 1), srv('BACKUP9', 'mysql', 'h', 2)], spider, 'b'),
    (e: unknown) => e instanceof TaskSetError && /"BACKUP9"/.test(e.message),
  );
  assert.throws(() => buildTaskSet([srv('SPT0', 'mysql', 'h', 1), srv('SPT2', 'mysql', 'h', 2)], spider, 'b'), /SPT0…SPT1/);
  assert.throws(
    () => buildTaskSet([srv('SPT0', 'mysql', 'h', 1), srv('SPT_SLAVE3', 'mysql_slave', 'h', 2)], spider, 'b'),
    /SPT_SLAVE3 has no master/,
  );
  assert.throws(() => buildTaskSet([], spider, 'b'), /no SPT<n>/);
});

test('backup ids: at most 40 of letters, digits, - _ .', () => {
  assert.equal(validateBackupId('2026-11-25_nightly.1'), '2026-11-25_nightly.1');
  assert.equal(validateBackupId('a'.repeat(40)).length, 40);
  for (const bad of ['', 'a'.repeat(41), "x' OR '1'='1", 'a b', 'id;rm', 'ü', '.', '..', '../x', 'a/b'])
    assert.throws(() => validateBackupId(bad), /must be 1-40 characters/);
});
