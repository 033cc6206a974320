// One "table doesn't exist" test for every caller: wrapped or not, any table or a named one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isNoSuchTable } from '../../src/db/connect.js';
import { InstanceError } from '../../src/errors.js';
import { isMissingClusterPauseTable } from '../../src/sql/cluster-pause.js';

test('isNoSuchTable: the driver code on an InstanceError or a driver error; a named table must be the one named', () => {
  const pauseMissing = "Table 'infodba_schema.spiderbackup_cluster_pause' doesn't exist";
  const wrapped = new InstanceError('h:1', pauseMissing, 'ER_NO_SUCH_TABLE');
  const raw = Object.assign(new Error("Table 'infodba_schema.global_backup' doesn't exist"), { code: 'ER_NO_SUCH_TABLE', errno: 1146 });
  assert.equal(isNoSuchTable(wrapped), true);
  assert.equal(isNoSuchTable(raw), true);
  assert.equal(isNoSuchTable(wrapped, 'spiderbackup_cluster_pause'), true);
  assert.equal(isNoSuchTable(raw, 'spiderbackup_cluster_pause'), false);
  assert.equal(isMissingClusterPauseTable(wrapped), true);
  assert.equal(isMissingClusterPauseTable(raw), false);
  assert.equal(isNoSuchTable(new InstanceError('h:1', 'denied', 'ER_TABLEACCESS_DENIED_ERROR')), false);
  assert.equal(isNoSuchTable(undefined), false);
  assert.equal(isNoSuchTable('ER_NO_SUCH_TABLE'), false);
});
