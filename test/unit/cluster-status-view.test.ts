// How `status --cluster` prints what it read: the running backup's bytes and rate, the last success,
// the cluster pause and the summary line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSeconds, renderClusterStatus } from '../../src/cli/render/cluster-status-view.js';
import { formatBytes } from '../../src/format.js';
import type { ClusterStatus } from '../../src/cluster/status.js';

test('bytes and durations read as people write them', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(3 * 1024 ** 3 + 512 * 1024 ** 2), '3.5 GiB');
  assert.equal(formatSeconds(59), '59 s');
  assert.equal(formatSeconds(61), '1 min 1 s');
  assert.equal(formatSeconds(7260), '2 h 1 min');
});

test('a running backup with bytes and rate, a last success, the cluster pause and the agents without life', () => {
  const status: ClusterStatus = {
    spider: '10.0.0.9:25000',
    clusterPause: { until: '2026-11-26T03:00:00.000Z', reason: 'storage maintenance', by: 'dba', remainingS: 3600 },
    ok: false,
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
        problems: ['agent lost: its last tick was 95 s ago', 'replication lags 400 s behind its master'],
      },
    ],
  };
  const text = renderClusterStatus(status);
  assert.match(text, /^Cluster paused until 2026-11-26T03:00:00.000Z \(storage maintenance, by dba\): no new backup starts\./);
  assert.match(text, /nightly/);
  assert.match(text, /for 1 min 40 s, 100 MiB \(1\.0 MiB\/s\)/);
  assert.match(text, /ended 2026-11-25 03:41:12 \(41 min 12 s after scheduled\)/);
  assert.match(text, /agent lost: its last tick was 95 s ago; replication lags 400 s/);
  assert.match(text, /2 instances: 1 without a live agent \(SPT_SLAVE0 lost\)\./);
});
