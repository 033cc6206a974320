// `expire` and restore points, on a real posix repository in a temp dir (the cluster's view given
// as data): automatic points before the oldest kept backup go with their objects, also those with
// no base backup at all; later ones and points named by hand stay; a dry run deletes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackupSummary } from '../../src/cluster/history.js';
import { pointDocument, pointKey, storedPointKeys } from '../../src/cluster/point-store.js';
import type { RestorePoint } from '../../src/cluster/restore-point-model.js';
import type { RepositoryConfig } from '../../src/config/repository.js';
import { PosixStore } from '../../src/repo/posix-store.js';
import { instanceKey, MANIFEST_OBJECT, openRepository, type Repository } from '../../src/repo/repository.js';
import { carryOutExpire, planExpire } from '../../src/restore/expire.js';

const config = (root: string): RepositoryConfig => ({
  file: '/etc/spiderbackup/spiderbackup.ini',
  store: { type: 'posix', path: root },
  prefix: 'c1',
  encryptionKeyFile: undefined,
  encryptionOldKeyFiles: [],
  rateLimit: undefined,
  partSize: 64 * 1024 * 1024,
  retentionKeep: undefined,
  retentionDays: undefined,
});

async function storeBackup(repo: Repository, backupId: string, startedAt: string): Promise<void> {
  const key = instanceKey(repo, backupId, '10.0.0.1', 3306);
  await repo.store.putObject(`${key}data.xb.zst`, Buffer.from('x'));
  const manifest = {
    format: 1,
    backupId,
    cluster: '',
    host: '10.0.0.1',
    port: 3306,
    role: 'master',
    shardValue: 0,
    tool: { name: 'mariadb-backup', version: '' },
    compression: 'zstd',
    serverVersion: '',
    startedAt,
    endedAt: startedAt,
    bytes: 1,
    files: [{ name: 'data.xb.zst', bytes: 1, sha256: '' }],
    position: { gtid: '0-1-5' },
  };
  await repo.store.putObject(`${key}${MANIFEST_OBJECT}`, Buffer.from(JSON.stringify(manifest)));
}

const summary = (backupId: string, createdAt: string): BackupSummary => ({
  backupId,
  state: 'complete',
  createdAt,
  tasks: { total: 1, success: 1, failed: 0, running: 0, cancelled: 0 } as BackupSummary['tasks'],
});

const point = (name: string, takenAt: string): RestorePoint => ({
  name,
  takenAt,
  pauseMs: 10,
  acquireMs: 5,
  holdMs: 5,
  spiderNodes: 1,
  internalXa: true,
  complete: true,
  status: 'taken',
  shards: [{ serverName: 'SPT0', shardValue: 0, host: '10.0.0.1', port: 3306, gtid: '0-1-9' }],
});

test('expire: automatic points older than the oldest kept backup go, rows (through deletePoint) and objects', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sb-expire-points-'));
  try {
    const repo = await openRepository(config(root), [], { store: new PosixStore(root) });
    await storeBackup(repo, 'b1', '2026-12-01T01:00:00.000Z');
    await storeBackup(repo, 'b2', '2026-12-02T01:00:00.000Z');
    const points = [
      point('auto-20261130-120000', '2026-11-30 12:00:00.000'), // before any backup: no base
      point('auto-20261201-120000', '2026-12-01 12:00:00.000'), // base b1, which goes
      point('by-hand', '2026-11-30 13:00:00.000'), // no base, not automatic: stays
      point('auto-20261202-120000', '2026-12-02 12:00:00.000'), // after the kept b2
    ];
    for (const p of points) await repo.store.putObject(pointKey(repo, p.name), pointDocument(p));
    const cluster = {
      summaries: new Map([
        ['b1', summary('b1', '2026-12-01 01:00:00')],
        ['b2', summary('b2', '2026-12-02 01:00:00')],
      ]),
      points,
    };
    const plan = await planExpire(repo, { keep: 1 }, cluster, { now: new Date('2026-12-03T00:00:00Z') });
    assert.deepEqual(
      plan.toDelete.map((e) => [e.backupId, e.points]),
      [['b1', ['auto-20261201-120000']]],
    );
    assert.deepEqual(plan.autoPoints, ['auto-20261130-120000']);
    assert.deepEqual(plan.binlogs, []);
    assert.equal((await storedPointKeys(repo)).size, 4, 'planning deletes nothing');

    const deleted: string[] = [];
    const done = await carryOutExpire(repo, plan, async (name) => void deleted.push(name), []);
    assert.deepEqual(done.errors, []);
    assert.deepEqual(deleted.sort(), ['auto-20261130-120000', 'auto-20261201-120000']);
    assert.deepEqual([...(await storedPointKeys(repo)).keys()].sort(), ['auto-20261202-120000', 'by-hand']);
    assert.ok(existsSync(join(root, 'c1/backups/b2')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('expire: with no kept backup time known, no automatic point goes by age', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sb-expire-points-'));
  try {
    const repo = await openRepository(config(root), [], { store: new PosixStore(root) });
    await storeBackup(repo, 'b1', '2026-12-01T01:00:00.000Z');
    const plan = await planExpire(
      repo,
      { keep: 1 },
      { summaries: new Map(), points: [point('auto-20261130-120000', '2026-11-30 12:00:00.000')] },
      { now: new Date('2026-12-03T00:00:00Z') },
    );
    assert.deepEqual(plan.autoPoints, []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
