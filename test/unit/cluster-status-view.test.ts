// How `status --cluster` prints what it read: the running backup's bytes and rate, the last success,
// the cluster pause and the summary line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderClusterStatus } from '../../src/cli/render/cluster-status-view.js';
import { formatBytes, formatDuration } from '../../src/format.js';
import type { ClusterStatus } from '../../src/cluster/status.js';

test('bytes and durations read as people write them', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(3 * 1024 ** 3 + 512 * 1024 ** 2), '3.5 GiB');
  assert.equal(formatDuration(59_000), '59.0 s');
  assert.equal(formatDuration(61_000), '1m01s');
  assert.equal(formatDuration(7260_000), '2h01m00s');
});

test('a running backup with bytes and rate, a last success, the cluster pause and the agents without life', () => {
  const status: ClusterStatus = {
    spider: '10.0.0.9:25000',
    clusterPause: { until: '2026-11-26T03:00:00.000Z', reason: 'storage maintenance', by: 'dba', remainingS: 3600 },
    ok: false,
    unread: [],
    instances: [
      {
        serverName: 'SPT0',
        role: 'master',
        shard: 0,
        host: '10.0.0.1',
        port: 20000,
        reachable: true,
        agent: { state: 'alive', version: '0.1.0', ageS: 2, tickIntervalMs: 10_000 },
        running: { backupId: 'nightly', elapsedS: 100, bytes: 100 * 1024 ** 2, bytesPerS: 1024 ** 2 },
        lastSuccess: { backupId: 'yesterday', endedAt: '2026-11-25 03:41:12', durationS: 2472 },
        problems: [],
      },
      {
        serverName: 'SPT_SLAVE0',
        role: 'slave',
        shard: 0,
        host: '10.0.0.2',
        port: 20000,
        reachable: true,
        agent: { state: 'lost', version: '0.1.0', ageS: 95 },
        problems: ['agent lost: its last tick was 1m35s ago', 'replication lags 6m40s behind its master'],
      },
    ],
  };
  const text = renderClusterStatus(status);
  assert.match(text, /^Cluster paused until 2026-11-26T03:00:00.000Z \(storage maintenance, by dba\): no new backup starts\./);
  assert.match(text, /nightly/);
  assert.match(text, /alive v0\.1\.0, 2 s ago/);
  assert.match(text, /lost v0\.1\.0, 1m35s ago/);
  assert.match(text, /for 1m40s, 100 MiB \(1\.0 MiB\/s\)/);
  assert.match(text, /ended 2026-11-25 03:41:12 \(41m12s after scheduled\)/);
  assert.match(text, /agent lost: its last tick was 1m35s ago; replication lags 6m40s/);
  assert.match(text, /2 instances: 1 without a live agent \(SPT_SLAVE0 lost\)\./);
});
