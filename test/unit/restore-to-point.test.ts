import { test } from 'node:test';
import assert from 'node:assert/strict';
import { restoreProblems } from '../../src/restore/to-point.js';
import type { ShardPlan } from '../../src/restore/plan.js';
import type { ManifestVerdict } from '../../src/sql/manifests.js';

const shard = { serverName: 'SPT0', shardValue: 0, host: 'h0', port: 20000, gtid: '0-1-50' };
const published = (dir: string, verdict = 'ok'): ManifestVerdict => ({
  backupId: 'b',
  host: 'h0',
  port: 20000,
  shardValue: 0,
  role: 'master',
  tool: 'mariadb-backup',
  dir,
  bytes: 1,
  manifestSha256: 'x',
  verdict,
  verdictDetail: verdict === 'ok' ? '' : 'sha256 mismatch',
  manifest: '{}',
});

test('restoreProblems: a plan that can be carried out here has none', () => {
  const ok: ShardPlan = {
    shard,
    from: 'master',
    published: published('/'),
    backupGtid: '0-1-10',
    binlogs: { files: ['mysql-bin.000002'] },
  };
  assert.deepEqual(restoreProblems(ok), []);
});

test('restoreProblems: names the shard and every reason it cannot be restored to the point here', () => {
  assert.deepEqual(restoreProblems({ shard, problem: 'no successful backup of shard 0 (SPT0)' }), [
    'SPT0 h0:20000 shard 0: no successful backup of shard 0 (SPT0)',
  ]);
  assert.match(restoreProblems({ shard, from: 'master', noManifest: true, binlogs: { files: [] } })[0] ?? '', /no published manifest/);
  const gone: ShardPlan = {
    shard,
    from: 'master',
    published: published('/nonexistent-dir-of-a-test', 'bad'),
    backupGtid: '0-1-10',
    binlogs: { files: ['mysql-bin.000004'], gone: { oldestKept: 'mysql-bin.000004', domains: [0] } },
    purged: ['mysql-bin.000002', 'mysql-bin.000003'],
  };
  const p = restoreProblems(gone);
  assert.equal(p.length, 3, p.join('\n'));
  assert.match(p[0] ?? '', /the agent's own check of its backup said bad: sha256 mismatch/);
  assert.match(p[1] ?? '', /backup files \/nonexistent-dir-of-a-test are not on this host/);
  assert.match(
    p[2] ?? '',
    /the replay needs mysql-bin\.000002 mysql-bin\.000003, purged from the master \(oldest kept: mysql-bin\.000004\)/,
  );
  assert.match(
    restoreProblems({ shard, from: 'master', published: published('/'), binlogs: { files: [] } })[0] ?? '',
    /position is unknown/,
  );
});

test('restoreProblems: all from the binlog archive is a plan; a hole the master does not fill is named, not "fetch them from the archive"', () => {
  const archived: ShardPlan = {
    shard,
    from: 'master',
    published: published('/'),
    backupGtid: '0-1-10',
    replay: [{ source: 'archive', file: 'mysql-bin.000002', host: 'h0', port: 20000, segments: 2, bytes: 100, startGtid: '0-1-10' }],
    archiveRuns: [],
  };
  assert.deepEqual(restoreProblems(archived, true), []);
  const crossed: ShardPlan = {
    ...archived,
    archiveGap: { after: '0-1-20', before: '0-1-30', reason: 'mysql-bin.000002 of h0:20000: p/000000000100.zst is missing' },
    gapBlocks: true,
    masterFrom: '0-1-20',
    binlogs: { files: ['mysql-bin.000004'], gone: { oldestKept: 'mysql-bin.000004', domains: [0] } },
  };
  assert.deepEqual(restoreProblems(crossed, true), [
    'SPT0 h0:20000 shard 0: the binlog archive has a hole the master does not fill either: ' +
      'GAP after 0-1-20 up to 0-1-30: mysql-bin.000002 of h0:20000: p/000000000100.zst is missing',
  ]);
});
