// Backups written into an S3 repository (issue 18) against a real cluster and a real object store
// (a private OpenStack Swift with s3api, test/support/swift.ts, which checks signatures): a global
// backup with each built-in runner lands in the bucket with manifests matching the stored objects
// and BackupDir empty; a wrong secret fails the task with the store's 403 SignatureDoesNotMatch in
// the supervisor's log line, `logs --backup-id` and `status`; a missing bucket is named.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { GetObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { DaemonProcess } from './support/daemon.js';
import { startSwift, type Swift } from './support/swift.js';
import { insertTasks, statusOf } from './support/tasks.js';
import { waitFor } from './support/workspace.js';

let cluster: TestCluster<'ws'>;
let ws: ClusterWorkspace;
let swift: Swift;
let m0: Instance;
let backupDir: string;
const PREFIX = 'c1';

before(async () => {
  swift = await startSwift();
  cluster = await setUpCluster({ shards: 2, slaves: [0], workspaces: { ws: { serves: ['spider0', 'master0', 'master1', 'slave0'] } } });
  ({ ws } = cluster.workspaces);
  m0 = cluster.masters[0] as Instance;
  backupDir = join(ws.confDir, 'dbbak');
  for (const m of cluster.masters) {
    await cluster.exec(m, 'CREATE DATABASE shop');
    await cluster.exec(m, 'CREATE TABLE shop.orders (id int PRIMARY KEY, item varchar(40))');
    for (let i = 0; i < 20; i++) await cluster.exec(m, 'INSERT INTO shop.orders VALUES (?, ?)', [i, `item-${m.shardValue}-${i}`]);
  }
  await cluster.waitReplicated();
});

after(async () => {
  await cluster?.close();
  await swift?.close();
});

/** `[repository]` for this Swift; the secret in an owner-only file (an inline one needs the agent config owner-only). */
function repository(extra: { secret?: string; bucket?: string } = {}): Record<string, string> {
  const secretFile = join(ws.dir, `s3-secret-${extra.secret ?? swift.secret}`);
  writeFileSync(secretFile, `${extra.secret ?? swift.secret}\n`, { mode: 0o600 });
  return {
    type: 's3',
    endpoint: swift.endpoint,
    bucket: extra.bucket ?? swift.bucket,
    region: swift.region,
    access_key_id: swift.accessKeyId,
    secret_access_key_file: secretFile,
    prefix: PREFIX,
  };
}

const instanceKey = (id: string, inst: Instance) => `${PREFIX}/backups/${id}/${inst.host}_${inst.port}/`;

async function getObject(key: string): Promise<Buffer> {
  const client = swift.client();
  try {
    const r = await client.send(new GetObjectCommand({ Bucket: swift.bucket, Key: key }));
    return Buffer.from(await (r.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  } finally {
    client.destroy();
  }
}

function filesBelow(dir: string, base = dir): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesBelow(join(dir, e.name), base) : [relative(base, join(dir, e.name))],
  );
}

for (const tool of ['mariadb-dump', 'mariadb-backup'] as const) {
  test(
    `a global backup with ${tool} goes into Swift: manifests match the stored objects, BackupDir empty`,
    { timeout: 240_000 },
    async () => {
      ws.writeAgentConfig({ backup: { runner: tool }, repository: repository() });
      const id = `s3-${tool}`;
      await insertTasks(
        cluster,
        [cluster.spider, ...cluster.masters, ...cluster.slaves].map((inst) => ({ backupId: id, for: inst })),
      );
      const r = await ws.cli('check', '--run');
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      for (const inst of [cluster.spider, ...cluster.masters, ...cluster.slaves]) {
        assert.equal(await statusOf(cluster, inst, id), 'success', `${inst.name}: ${r.stdout}\n${r.stderr}`);
        const manifest = JSON.parse((await getObject(`${instanceKey(id, inst)}manifest.json`)).toString('utf8')) as {
          backupId: string;
          files: { name: string; bytes: number; sha256: string }[];
        };
        assert.equal(manifest.backupId, id);
        for (const f of manifest.files) {
          const data = await getObject(`${instanceKey(id, inst)}${f.name}`);
          assert.equal(data.length, f.bytes, `${inst.name}: ${f.name} size`);
          assert.equal(createHash('sha256').update(data).digest('hex'), f.sha256, `${inst.name}: ${f.name} sha256`);
        }
      }
      assert.deepEqual(filesBelow(backupDir), [], 'nothing staged in BackupDir');
      const client = swift.client();
      try {
        const open = await client.send(new ListMultipartUploadsCommand({ Bucket: swift.bucket, Prefix: `${PREFIX}/` }));
        assert.deepEqual(open.Uploads ?? [], [], 'no incomplete upload left');
      } finally {
        client.destroy();
      }
    },
  );
}

describe('a store that refuses', () => {
  const logFile = () => join(ws.dir, 'agent.log');
  let daemon: DaemonProcess | undefined;
  after(() => daemon?.dispose());

  test(
    'a wrong secret fails the task with 403 SignatureDoesNotMatch in the log line, `logs --backup-id` and `status`',
    { timeout: 180_000 },
    async () => {
      ws.writeAgentConfig({
        backup: { runner: 'mariadb-dump' },
        repository: repository({ secret: 'not-the-secret' }),
        log: { file: logFile() },
      });
      daemon = new DaemonProcess(ws);
      await daemon.ready();
      // The daemon's own first look at the store ends before the backup: a refusal it notes later
      // would otherwise become the last error in place of the backup's.
      await waitFor('the first repository check', async () => {
        const v = JSON.parse((await ws.cli('status', '--format', 'json')).stdout) as { repository: string | null };
        return v.repository !== null || undefined;
      });
      const id = 's3-wrong-secret';
      await insertTasks(cluster, [{ backupId: id, for: m0 }]);
      await waitFor(
        'the daemon to run and fail the backup',
        async () => /^failed/.test((await statusOf(cluster, m0, id)) ?? '') || undefined,
        90_000,
      );
      assert.equal(await statusOf(cluster, m0, id), 'failed: upload to s3 store');

      const failed = readFileSync(logFile(), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"backup failed"'))
        .map((l) => JSON.parse(l) as { backupId: string; repositoryError?: string })
        .find((l) => l.backupId === id);
      assert.match(failed?.repositoryError ?? '', /refused \(HTTP 403 SignatureDoesNotMatch\)/);
      assert.match(failed?.repositoryError ?? '', new RegExp(`s3 bucket ${swift.bucket} at ${swift.endpoint}`));
      const logs = await ws.cli('logs', '--backup-id', id);
      assert.equal(logs.code, 0, logs.stderr);
      assert.match(logs.stdout, /403 SignatureDoesNotMatch/);

      const status = await waitFor('status to show the refusal', async () => {
        const v = JSON.parse((await ws.cli('status', '--format', 'json')).stdout) as {
          repository: string | null;
          lastError: { message: string } | null;
        };
        return v.repository !== null && v.lastError?.message.includes(id) ? v : undefined;
      });
      assert.match(
        status.lastError?.message ?? '',
        new RegExp(`backup ${id} on port ${m0.port}: failed: upload to s3 store: .*403 SignatureDoesNotMatch`),
      );
      assert.match(
        status.repository ?? '',
        new RegExp(`^s3 bucket ${swift.bucket} at ${swift.endpoint}, prefix ${PREFIX}: .*403 SignatureDoesNotMatch`),
      );
      assert.deepEqual(filesBelow(backupDir), []);
      assert.ok(daemon.child.exitCode === null, 'the daemon goes on');
      await daemon.dispose();
      daemon = undefined;
    },
  );

  test('a missing bucket is named', { timeout: 120_000 }, async () => {
    ws.writeAgentConfig({ backup: { runner: 'mariadb-dump' }, repository: repository({ bucket: 'no-such-bucket' }) });
    const id = 's3-no-bucket';
    await insertTasks(cluster, [{ backupId: id, for: m0 }]);
    const r = await ws.cli('check', '--run', '-c', ws.dropIn(m0));
    assert.equal(await statusOf(cluster, m0, id), 'failed: upload to s3 store', `${r.stdout}\n${r.stderr}`);
    assert.match(`${r.stdout}${r.stderr}`, /bucket no-such-bucket does not exist/);
  });
});
