// The S3 store against a real object store (a private OpenStack Swift with s3api, see
// test/support/swift.ts): the repository's byte pipeline with encryption through multipart
// uploads, what an aborted or killed upload leaves (no object; an incomplete upload that
// cleanIncomplete removes), and the store's refusals named as it gave them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import type { RepositoryConfig, S3StoreConfig } from '../src/config/repository.js';
import { encryptedSize } from '../src/repo/encryption.js';
import { download, hashStored, instanceKey, openRepository, upload } from '../src/repo/repository.js';
import { S3Store } from '../src/repo/s3-store.js';
import { NOT_FOUND, RepoError } from '../src/repo/store.js';
import { startSwift, type Swift } from './support/swift.js';

const MiB = 1024 ** 2;
const PART = 5 * MiB;
const T = { timeout: 180_000 };
const here = dirname(fileURLToPath(import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sb-s3-'));

let swift: Swift;
const stores: S3Store[] = [];
before(async () => {
  swift = await startSwift();
});
after(async () => {
  for (const s of stores) s.close();
  await swift?.close();
});

function storeOf(overrides: Partial<S3StoreConfig> = {}, partSize = PART): S3Store {
  const s = new S3Store(swift.storeConfig(overrides), partSize);
  stores.push(s);
  return s;
}

function secretFile(name: string, content: string, mode: number): string {
  const f = join(dir, name);
  writeFileSync(f, content, { mode });
  chmodSync(f, mode);
  return f;
}

const repoConfig = (store: S3StoreConfig, keyFile?: string): RepositoryConfig => ({
  file: join(dir, 'spiderbackup.ini'),
  store,
  prefix: 'c1',
  encryptionKeyFile: keyFile,
  encryptionOldKeyFiles: [],
  rateLimit: undefined,
  partSize: PART,
  retentionKeep: undefined,
  retentionDays: undefined,
});

/** A stream in odd chunk sizes, as a tool's output would come. */
function chunked(data: Buffer, size = 100_003): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
    })(),
  );
}

async function readAll(r: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
}

async function incompleteUploads(prefix: string): Promise<string[]> {
  const client = swift.client();
  try {
    const out = await client.send(new ListMultipartUploadsCommand({ Bucket: swift.bucket, Prefix: prefix }));
    return (out.Uploads ?? []).map((u) => u.Key ?? '');
  } finally {
    client.destroy();
  }
}

const refusedWith = (code: string, re: RegExp) => (e: unknown) => e instanceof RepoError && e.code === code && re.test(e.message);

test('upload and download with encryption: a multipart object of 3 parts, hashed as stored, read back whole', T, async () => {
  const keyFile = secretFile('repo.key', randomBytes(32).toString('hex'), 0o600);
  const repo = await openRepository(repoConfig(swift.storeConfig(), keyFile), [], { store: storeOf() });
  const plain = randomBytes(12 * MiB + 321);
  const key = `${instanceKey(repo, '20260101-000000', 'db1', 20000)}dump.sql.zst`;
  let progress = 0;
  const up = await upload(repo, key, chunked(plain), { onBytes: (n) => (progress = n) });
  assert.equal(up.bytes, encryptedSize(plain.length));
  assert.equal(progress, up.bytes);
  assert.equal(up.keyId, repo.key?.id);
  // Three parts: a multipart upload (Swift's s3api gives a multipart object an ETag ending in -<parts>).
  const client = swift.client();
  const head = await client.send(new HeadObjectCommand({ Bucket: swift.bucket, Key: key }));
  client.destroy();
  assert.match(head.ETag ?? '', /-3"?$/);
  assert.equal(head.ContentLength, up.bytes);
  assert.deepEqual(await hashStored(repo, key), { bytes: up.bytes, sha256: up.sha256 });
  assert.ok((await readAll(await download(repo, key))).equals(plain));

  // Small objects take one PUT: empty, one byte, and the manifest written last.
  for (const [name, data] of [
    ['empty', Buffer.alloc(0)],
    ['one', Buffer.from('x')],
  ] as const) {
    const k = `${instanceKey(repo, '20260101-000000', 'db1', 20000)}${name}`;
    await upload(repo, k, Readable.from([data]));
    assert.ok((await readAll(await download(repo, k))).equals(data), name);
  }
  const manifestKey = `${instanceKey(repo, '20260101-000000', 'db1', 20000)}manifest.json`;
  await repo.store.putObject(manifestKey, Buffer.from('{"files":[]}'));
  assert.equal((await repo.store.getObject(manifestKey))?.toString(), '{"files":[]}');
  assert.equal(await repo.store.getObject(`${manifestKey}.nope`), undefined);
  assert.equal(await repo.store.stat(`${manifestKey}.nope`), undefined);
  await assert.rejects(repo.store.getStream(`${manifestKey}.nope`), refusedWith(NOT_FOUND, /manifest\.json\.nope: not found/));
  const listed = await repo.store.list('c1/backups/20260101-000000/');
  assert.deepEqual(
    listed.map((o) => o.key),
    ['dump.sql.zst', 'empty', 'manifest.json', 'one'].map((n) => `c1/backups/20260101-000000/db1_20000/${n}`),
  );
  assert.equal(listed[0]?.bytes, up.bytes);
  await repo.store.remove([...listed.map((o) => o.key), 'c1/backups/20260101-000000/db1_20000/already-gone']);
  assert.deepEqual(await repo.store.list('c1/'), []);
});

test('an aborted upload leaves no object and no incomplete upload; a failing body neither', T, async () => {
  const store = storeOf();
  const key = 'c1/backups/aborted/db1_20000/dump.sql.zst';
  const ac = new AbortController();
  let sent = 0;
  const endless = new Readable({
    read() {
      sent += 65536;
      // Abort once more than two parts were read: parts are on their way.
      if (sent > 2 * PART + MiB) ac.abort();
      this.push(Buffer.alloc(65536, 3));
    },
  });
  await assert.rejects(
    store.putStream(key, endless, { signal: ac.signal }),
    (e: unknown) => e instanceof RepoError && /dump\.sql\.zst/.test(e.message),
  );
  assert.equal(await store.stat(key), undefined);
  assert.deepEqual(await incompleteUploads('c1/backups/aborted/'), []);

  let n = 0;
  const failing = new Readable({
    read() {
      if (++n === 120) this.destroy(new Error('mariadb-dump exited with 2'));
      else this.push(Buffer.alloc(65536, 4));
    },
  });
  await assert.rejects(store.putStream(key, failing), /mariadb-dump exited with 2/);
  assert.equal(await store.stat(key), undefined);
  assert.deepEqual(await incompleteUploads('c1/backups/aborted/'), []);
});

test('a process killed mid-upload leaves no object, only an incomplete upload, which cleanIncomplete removes', T, async () => {
  const key = 'c1/backups/killed/db1_20000/dump.sql.zst';
  const child = spawn(
    process.execPath,
    [join(here, 'support/s3-upload-child.js'), JSON.stringify(swift.storeConfig()), String(PART), key],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise((r) => child.once('exit', r));
  try {
    // Killed once its multipart upload exists at the store.
    const deadline = Date.now() + 60_000;
    while ((await incompleteUploads('c1/backups/killed/')).length === 0) {
      assert.ok(Date.now() < deadline, 'the child never started its multipart upload');
      assert.equal(child.exitCode, null, 'the child exited early');
      await delay(50);
    }
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  const store = storeOf();
  assert.equal(await store.stat(key), undefined);
  assert.deepEqual(await store.list('c1/backups/killed/'), []);
  assert.deepEqual(await incompleteUploads('c1/backups/killed/'), [key]);
  // Only below the prefix it is given.
  assert.deepEqual(await store.cleanIncomplete('c1/backups/other/'), []);
  assert.deepEqual(await store.cleanIncomplete('c1/backups/'), [key]);
  assert.deepEqual(await incompleteUploads('c1/backups/killed/'), []);
});

test('a wrong secret: the store refusal (403 SignatureDoesNotMatch) with the access key id, never the secret', T, async () => {
  const store = storeOf({ secret: { inline: 'not-the-secret' } });
  const refused = (e: unknown) =>
    refusedWith('SignatureDoesNotMatch', /HTTP 403 SignatureDoesNotMatch\) for access key id test:tester/)(e) &&
    !(e as Error).message.includes('not-the-secret');
  await assert.rejects(store.check(), refused);
  await assert.rejects(store.putStream('c1/x', Readable.from([Buffer.from('data')])), refused);
  await assert.rejects(store.list('c1/'), refused);
  const repo = await openRepository(repoConfig(swift.storeConfig()), [], { store });
  await assert.rejects(upload(repo, 'c1/backups/b/db1_20000/dump.sql.zst', chunked(randomBytes(7 * MiB))), refused);
  // An unknown access key: refused too, with its id.
  await assert.rejects(
    storeOf({ accessKeyId: 'test:nobody' }).check(),
    (e: unknown) => e instanceof RepoError && /HTTP 403 .*test:nobody/.test(e.message),
  );
  // The right secret from an owner-only file works; a file others can read is refused by name.
  await storeOf({ secret: { file: secretFile('secret', `${swift.secret}\n`, 0o600) } }).check();
  const open = secretFile('secret-open', swift.secret, 0o644);
  assert.throws(
    () => storeOf({ secret: { file: open } }),
    (e: unknown) => e instanceof RepoError && e.message.includes(open) && /mode 644/.test(e.message) && !e.message.includes(swift.secret),
  );
});

test('a missing bucket and an unreachable store are named', T, async () => {
  await assert.rejects(
    storeOf({ bucket: 'no-such-bucket' }).check(),
    refusedWith('NoSuchBucket', new RegExp(`bucket no-such-bucket does not exist at ${swift.endpoint}`)),
  );
  // A port nobody listens on.
  const closed = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
  const endpoint = `http://127.0.0.1:${closed}`;
  await assert.rejects(
    storeOf({ endpoint }).check(),
    (e: unknown) => e instanceof RepoError && e.code === 'ECONNREFUSED' && e.message.includes(`cannot reach ${endpoint}`),
  );
});

test('list in pages; remove in batches of 1,000 (1,001 keys, some of them never there)', T, async () => {
  const store = new S3Store(swift.storeConfig(), PART, { pageSize: 3 });
  stores.push(store);
  const keys = Array.from({ length: 8 }, (_, i) => `c1/many/${String(i).padStart(4, '0')}`);
  await Promise.all(keys.map((k) => store.putObject(k, Buffer.from(k))));
  const listed = await store.list('c1/many/');
  assert.deepEqual(
    listed.map((o) => o.key),
    keys,
  );
  assert.ok(listed.every((o) => o.bytes === o.key.length));
  const gone = Array.from({ length: 1001 - keys.length }, (_, i) => `c1/never/${i}`);
  const batches = () =>
    readFileSync(join(swift.dir, 'proxy.log'), 'utf8').match(/POST \/[^ ]*%3Fdelete[^ ]* HTTP\/1\.[01] 200/g)?.length ?? 0;
  const before = batches();
  await store.remove([...gone.slice(0, 995), ...keys, ...gone.slice(995)]);
  assert.deepEqual(await store.list('c1/many/'), []);
  // In two batch requests (Swift's log), not 1,001 single deletes.
  assert.equal(batches() - before, 2);
});
