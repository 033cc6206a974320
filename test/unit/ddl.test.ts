// The Spider partitioning every Spider table of ours (and the sandbox's sample table) is built with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSpiderRestorePointTable, createSpiderTable, spiderPartitions } from '../../src/sql/ddl.js';

test('spiderPartitions: partition i on server SPT<i>, by the column MOD the shard count', () => {
  assert.equal(
    spiderPartitions({ column: 'id', shards: 2, database: 'demo', table: 'orders' }),
    'PARTITION BY LIST (id MOD 2) (\n' +
      `  PARTITION pt0 VALUES IN (0) COMMENT = 'database "demo", table "orders", server "SPT0"',\n` +
      `  PARTITION pt1 VALUES IN (1) COMMENT = 'database "demo", table "orders", server "SPT1"'\n` +
      ')',
  );
  assert.match(createSpiderTable(3, false), /PARTITION BY LIST \(ShardValue MOD 3\)[^]*table "global_backup", server "SPT2"'\n\)$/);
  assert.match(
    createSpiderRestorePointTable(1),
    /PARTITION BY LIST \(ShardValue MOD 1\)[^]*table "spiderbackup_restore_point", server "SPT0"'\n\)$/,
  );
});

test('spiderPartitions: refuses a shard count that is not a positive integer and names that are not plain identifiers', () => {
  for (const shards of [0, -1, 1.5]) assert.throws(() => createSpiderTable(shards, false), RangeError);
  assert.throws(() => spiderPartitions({ column: 'id) x', shards: 2, database: 'demo', table: 'orders' }), RangeError);
  assert.throws(() => spiderPartitions({ column: 'id', shards: 2, database: 'demo"', table: 'orders' }), RangeError);
});
