// The repository without a network: [repository] settings, the prefix every host must agree on,
// and the posix store carrying the byte pipeline (upload counts and hashes what is stored; a
// failed or aborted upload leaves no object, only a leftover that cleanIncomplete removes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { loadAgentConfig } from '../../src/config/agent.js';
import { parseBytes } from '../../src/config/bytes.js';
import { cleanPrefix, repositoryPrefix, type RepositoryConfig } from '../../src/config/repository.js';
import type { InstanceConfig } from '../../src/config/instance.js';
import { ConfigError } from '../../src/errors.js';
import { PosixStore } from '../../src/repo/posix-store.js';
import { download, hashStored, instanceKey, openRepository, upload } from '../../src/repo/repository.js';

function agentIni(text: string, mode = 0o600): string {
  const f = join(mkdtempSync(join(tmpdir(), 'sb-repo-')), 'spiderbackup.ini');
  writeFileSync(f, text, { mode });
  chmodSync(f, mode);
  return f;
}

const refused = (re: RegExp) => (e: unknown) => e instanceof ConfigError && re.test(e.message);

test('sizes: binary units, a bare number of bytes; MB is refused as ambiguous', () => {
  assert.equal(parseBytes('50MiB'), 50 * 1024 ** 2);
  assert.equal(parseBytes('64 MiB'), 64 * 1024 ** 2);
  assert.equal(parseBytes('1GiB'), 1024 ** 3);
  assert.equal(parseBytes('4096'), 4096);
  assert.equal(parseBytes('10MB'), undefined);
  assert.equal(parseBytes('fast'), undefined);
});

test('[repository]: absent means no repository; posix needs a path; s3 a bucket and a secret', () => {
  assert.equal(loadAgentConfig(agentIni('[agent]\ntick_interval = 10s\n')).repository, undefined);
  const posix = loadAgentConfig(agentIni('[repository]\ntype = posix\npath = /mnt/backup\nrate_limit = 50MiB\n')).repository;
  assert.deepEqual(posix?.store, { type: 'posix', path: '/mnt/backup' });
  assert.equal(posix?.rateLimit, 50 * 1024 ** 2);
  assert.equal(posix?.partSize, 64 * 1024 ** 2);
  assert.throws(() => loadAgentConfig(agentIni('[repository]\ntype = posix\n')), refused(/\[repository\] path = \(missing\): required/));
  assert.throws(
    () => loadAgentConfig(agentIni('[repository]\ntype = ftp\n')),
    refused(/\[repository\] type = "ftp": must be one of posix, s3/),
  );
  assert.throws(
    () => loadAgentConfig(agentIni('[repository]\ntype = posix\npath = /x\npart_size = 1MiB\n')),
    refused(/\[repository\] part_size = "1MiB": must be at least/),
  );
  const s3 = loadAgentConfig(
    agentIni(
      '[repository]\ntype = s3\nendpoint = http://127.0.0.1:8080\nbucket = backups\naccess_key_id = test:tester\nsecret_access_key_file = /etc/sb/secret\n',
    ),
  ).repository;
  assert.equal(s3?.store.type, 's3');
  assert.equal(s3?.store.type === 's3' && s3.store.forcePathStyle, true, 'path style by default with an endpoint');
  assert.throws(
    () => loadAgentConfig(agentIni('[repository]\ntype = s3\nbucket = backups\naccess_key_id = k\n')),
    refused(/secret_access_key_file = \(missing\): required/),
  );
});

test('an inline secret in a file others can read is refused, and never repeated', () => {
  const text = '[repository]\ntype = s3\nbucket = backups\naccess_key_id = k\nsecret_access_key = s3cr3t-value\n';
  assert.ok(loadAgentConfig(agentIni(text, 0o600)).repository);
  assert.throws(
    () => loadAgentConfig(agentIni(text, 0o644)),
    (e: unknown) => e instanceof ConfigError && /readable by others \(mode 644\)/.test(e.message) && !e.message.includes('s3cr3t'),
  );
});

const instance = (file: string, pub: Record<string, string>): InstanceConfig =>
  ({ file, sections: { Public: pub } }) as unknown as InstanceConfig;
const repoConfig = (prefix?: string): RepositoryConfig => ({
  file: '/etc/spiderbackup/spiderbackup.ini',
  store: { type: 'posix', path: '/x' },
  prefix,
  encryptionKeyFile: undefined,
  encryptionOldKeyFiles: [],
  rateLimit: undefined,
  partSize: 64 * 1024 ** 2,
  retentionKeep: undefined,
  retentionDays: undefined,
});

test('prefix: the setting, else the cluster the drop-ins name, cleaned; disagreeing or silent drop-ins are named', () => {
  assert.equal(cleanPrefix('10.0.0.1:25000'), '10.0.0.1_25000');
  assert.equal(repositoryPrefix(repoConfig('c1'), []), 'c1');
  const a = instance('/etc/dbbackup.20000.ini', { ClusterAddress: 'spider.c1:25000' });
  const b = instance('/etc/dbbackup.20001.ini', { ClusterId: 'spider.c1:25000' });
  assert.equal(repositoryPrefix(repoConfig(), [a, b]), 'spider.c1_25000');
  const c = instance('/etc/dbbackup.20002.ini', { ClusterName: 'other' });
  assert.throws(
    () => repositoryPrefix(repoConfig(), [a, c]),
    refused(/\[repository\] prefix.*different clusters.*dbbackup\.20002\.ini: other/),
  );
  assert.throws(
    () => repositoryPrefix(repoConfig(), [instance('/etc/x.ini', {})]),
    refused(/\[repository\] prefix.*no drop-in names its cluster/),
  );
});

test('posix store: upload hashes and counts the stored bytes; download gives them back; list and remove', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sb-posix-'));
  const repo = await openRepository(repoConfig('c1'), [], { store: new PosixStore(root) });
  const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  const key = `${instanceKey(repo, 'b1', 'db1', 20000)}dump.sql.zst`;
  let seen = 0;
  const up = await upload(repo, key, Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { onBytes: (n) => (seen = n) });
  assert.equal(up.bytes, data.length);
  assert.equal(seen, data.length);
  assert.equal(up.sha256, createHash('sha256').update(data).digest('hex'));
  assert.deepEqual(await hashStored(repo, key), { bytes: up.bytes, sha256: up.sha256 });
  const back: Buffer[] = [];
  for await (const c of await download(repo, key)) back.push(c as Buffer);
  assert.ok(Buffer.concat(back).equals(data));
  await repo.store.putObject(`${instanceKey(repo, 'b1', 'db1', 20000)}manifest.json`, Buffer.from('{}'));
  assert.deepEqual(
    (await repo.store.list('c1/backups/b1/')).map((o) => o.key),
    ['c1/backups/b1/db1_20000/dump.sql.zst', 'c1/backups/b1/db1_20000/manifest.json'],
  );
  await repo.store.remove((await repo.store.list('c1/backups/b1/')).map((o) => o.key));
  assert.deepEqual(readdirSync(root), [], 'the directories it emptied removed');
  assert.equal(existsSync(join(root, 'c1/backups')), false);
});

test('posix store: a failed upload leaves no object, only a .partial that cleanIncomplete removes', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sb-posix-'));
  const repo = await openRepository(repoConfig('c1'), [], { store: new PosixStore(root) });
  const key = `${instanceKey(repo, 'b2', 'db1', 20000)}dump.sql.zst`;
  const failing = new Readable({
    read() {
      this.push(Buffer.alloc(1024));
      this.destroy(new Error('mariadb-dump exited with 2'));
    },
  });
  await assert.rejects(upload(repo, key, failing), /mariadb-dump exited with 2/);
  assert.equal(await repo.store.stat(key), undefined);
  // A killed process leaves its .partial behind: simulated here by writing one.
  mkdirSync(join(root, 'c1/backups/b2/db1_20000'), { recursive: true });
  writeFileSync(join(root, 'c1/backups/b2/db1_20000/dump.sql.zst.partial'), 'half');
  assert.deepEqual(await repo.store.list('c1/'), [], 'a .partial is never an object');
  assert.deepEqual(await repo.store.cleanIncomplete('c1/backups/b2/'), ['c1/backups/b2/db1_20000/dump.sql.zst.partial']);
});

test('posix store: check() names a missing directory', async () => {
  await assert.rejects(new PosixStore('/nonexistent/repo').check(), /posix \/nonexistent\/repo: cannot use \/nonexistent\/repo: .*ENOENT/);
});
