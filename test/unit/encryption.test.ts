// Repository encryption without a store: roundtrips of every size through odd chunkings, and
// every way a stored object can be damaged (a flipped byte, a truncation, a dropped or swapped
// segment, appended bytes, another key) fails before a byte of the bad segment comes out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, type Transform } from 'node:stream';
import {
  decryptStream,
  encryptedSize,
  encryptStream,
  HEADER_SIZE,
  KEY_FILE_REFUSED,
  loadRepoKey,
  NOT_AUTHENTIC,
  NOT_ENCRYPTED,
  type RepoKey,
  SEGMENT_SIZE,
  storedKeyId,
  WRONG_KEY,
} from '../../src/repo/encryption.js';
import type { RepositoryConfig } from '../../src/config/repository.js';
import { PosixStore } from '../../src/repo/posix-store.js';
import { download, downloadChecked, instanceKey, openRepository, upload, type Repository } from '../../src/repo/repository.js';
import { RepoError } from '../../src/repo/store.js';

const MiB = 1024 ** 2;
const TAG = 16;
const dir = mkdtempSync(join(tmpdir(), 'sb-enc-'));

function keyFile(name: string, content: Buffer | string, mode = 0o600): string {
  const f = join(dir, name);
  writeFileSync(f, content, { mode });
  chmodSync(f, mode);
  return f;
}

const keyA = loadRepoKey(keyFile('a.key', randomBytes(32).toString('hex') + '\n'));
const keyB = loadRepoKey(keyFile('b.key', randomBytes(32)));

/** Feeds `input` in pieces of the given sizes (cycled) through `t`; what came out, and the error if any. */
async function through(t: Transform, input: Buffer, sizes: number[] = [65536]): Promise<{ out: Buffer; err: unknown }> {
  function* pieces(): Generator<Buffer> {
    let at = 0;
    for (let i = 0; at < input.length; i++) {
      const n = sizes[i % sizes.length] as number;
      yield input.subarray(at, at + n);
      at += n;
    }
  }
  const out: Buffer[] = [];
  let err: unknown;
  const src = Readable.from(pieces());
  src.on('error', (e) => t.destroy(e));
  src.pipe(t);
  try {
    for await (const c of t) out.push(c as Buffer);
  } catch (e) {
    err = e;
  }
  return { out: Buffer.concat(out), err };
}

async function encrypt(plain: Buffer, key: RepoKey = keyA, sizes?: number[]): Promise<Buffer> {
  const { out, err } = await through(encryptStream(key), plain, sizes);
  assert.equal(err, undefined);
  return out;
}

const isRepoError = (code: string, re: RegExp) => (e: unknown) => e instanceof RepoError && e.code === code && re.test(e.message);

test('roundtrip: 0, 1, 1 MiB, 1 MiB + 1 and 5 MiB, written and read in odd chunk sizes', async () => {
  for (const size of [0, 1, MiB, MiB + 1, 5 * MiB + 3]) {
    const plain = randomBytes(size);
    const stored = await encrypt(plain, keyA, [7, 65_537, 1_000_003]);
    assert.equal(stored.length, encryptedSize(size), `stored size of ${size}`);
    assert.equal(storedKeyId(stored), keyA.id);
    for (const sizes of [[1_048_593], [3, 5_001], [SEGMENT_SIZE + TAG], [stored.length || 1]]) {
      const { out, err } = await through(decryptStream([keyA]), stored, sizes);
      assert.equal(err, undefined, `size ${size}, chunks ${sizes.join('/')}`);
      assert.ok(out.equals(plain), `size ${size}, chunks ${sizes.join('/')}`);
    }
  }
});

test('the same plaintext encrypts differently each time (a random nonce prefix per object)', async () => {
  const plain = Buffer.from('same bytes');
  assert.ok(!(await encrypt(plain)).equals(await encrypt(plain)));
});

test('one flipped byte: an error, and nothing of that segment (or after it) comes out', async () => {
  const plain = randomBytes(3 * MiB + 100);
  const stored = await encrypt(plain);
  // A byte inside segment 1 (the second).
  const bad = Buffer.from(stored);
  const at = HEADER_SIZE + SEGMENT_SIZE + TAG + 12345;
  bad[at] = (bad[at] as number) ^ 0x01;
  const { out, err } = await through(decryptStream([keyA], { object: 'c1/x/dump.sql.zst' }), bad, [4096]);
  assert.ok(isRepoError(NOT_AUTHENTIC, /c1\/x\/dump\.sql\.zst: segment 1 fails authentication/)(err), String(err));
  assert.ok(out.length <= SEGMENT_SIZE, `${out.length} bytes came out`);
  assert.ok(out.equals(plain.subarray(0, out.length)));
  // A flipped tag byte of the last segment, and a flipped header byte (the nonce prefix).
  for (const pos of [stored.length - 1, HEADER_SIZE - 1]) {
    const b = Buffer.from(stored);
    b[pos] = (b[pos] as number) ^ 0x80;
    const r = await through(decryptStream([keyA]), b);
    assert.ok(isRepoError(NOT_AUTHENTIC, /fails authentication/)(r.err), String(r.err));
  }
});

test('truncated, dropped, swapped or appended segments are detected', async () => {
  const plain = randomBytes(3 * MiB + 100);
  const stored = await encrypt(plain);
  const seg = (i: number) => stored.subarray(HEADER_SIZE + i * (SEGMENT_SIZE + TAG), HEADER_SIZE + (i + 1) * (SEGMENT_SIZE + TAG));
  const head = stored.subarray(0, HEADER_SIZE);
  const cases: [string, Buffer][] = [
    ['last byte cut', stored.subarray(0, stored.length - 1)],
    ['last segment dropped (cut at a segment boundary)', Buffer.concat([head, seg(0), seg(1), seg(2)])],
    ['middle segment dropped', Buffer.concat([head, seg(0), seg(2), seg(3)])],
    ['segments 0 and 1 swapped', Buffer.concat([head, seg(1), seg(0), seg(2), seg(3)])],
    ['a segment repeated', Buffer.concat([head, seg(0), seg(0), seg(1), seg(2), seg(3)])],
    ['bytes appended', Buffer.concat([stored, Buffer.alloc(20)])],
    ['only the header', Buffer.from(head)],
  ];
  for (const [what, bad] of cases) {
    const { out, err } = await through(decryptStream([keyA]), bad, [100_000]);
    assert.ok(isRepoError(NOT_AUTHENTIC, /fails authentication|truncated/)(err), `${what}: ${String(err)}`);
    assert.ok(out.equals(plain.subarray(0, out.length)), `${what}: only authenticated plaintext came out`);
  }
  // Shorter than a header, and no header at all.
  const short = await through(decryptStream([keyA]), head.subarray(0, 10));
  assert.ok(isRepoError(NOT_AUTHENTIC, /truncated/)(short.err), String(short.err));
  const empty = await through(decryptStream([keyA]), Buffer.alloc(0));
  assert.ok(isRepoError(NOT_AUTHENTIC, /truncated: 0 bytes/)(empty.err), String(empty.err));
  const plainObject = await through(decryptStream([keyA]), Buffer.from('-- MariaDB dump\n'.repeat(10)));
  assert.ok(isRepoError(NOT_ENCRYPTED, /not encrypted by spiderbackup/)(plainObject.err), String(plainObject.err));
  assert.equal(plainObject.out.length, 0);
  assert.equal(storedKeyId(Buffer.from('-- MariaDB dump\n')), undefined);
});

test('another key: refused from the header, naming the key files tried and the stored key id, before any data', async () => {
  const stored = await encrypt(randomBytes(2 * MiB), keyA);
  const { out, err } = await through(decryptStream([keyB]), stored, [HEADER_SIZE, 1000]);
  assert.ok(
    isRepoError(WRONG_KEY, new RegExp(`key id ${keyA.id}.*${keyB.file.replace(/[.]/g, '\\.')} \\(key id ${keyB.id}\\)`))(err),
    String(err),
  );
  assert.equal(out.length, 0);
  const none = await through(decryptStream([]), stored);
  assert.ok(isRepoError(WRONG_KEY, /no key file is set/)(none.err), String(none.err));
});

test('old keys (encryption_old_key_files) still decrypt the objects they wrote', async () => {
  const plain = randomBytes(MiB + 7);
  const old = await encrypt(plain, keyA);
  const current = await encrypt(plain, keyB);
  for (const stored of [old, current]) {
    const { out, err } = await through(decryptStream([keyB, keyA]), stored);
    assert.equal(err, undefined);
    assert.ok(out.equals(plain));
  }
  assert.equal(storedKeyId(old), keyA.id);
  assert.equal(storedKeyId(current), keyB.id);
});

test('key files: owner-only, 32 raw bytes or 64 hex characters; anything else is named', () => {
  const hex = randomBytes(32).toString('hex');
  assert.equal(loadRepoKey(keyFile('hex.key', hex)).key.toString('hex'), hex);
  assert.equal(loadRepoKey(keyFile('hex-crlf.key', `${hex.toUpperCase()}\r\n`)).key.toString('hex'), hex);
  const raw = randomBytes(32);
  const k = loadRepoKey(keyFile('raw.key', raw));
  assert.ok(k.key.equals(raw));
  assert.match(k.id, /^[0-9a-f]{16}$/);
  assert.equal(loadRepoKey(keyFile('raw2.key', raw)).id, k.id, 'the id depends on the key only');
  assert.ok(!k.id.includes(raw.toString('hex').slice(0, 16)));

  const group = keyFile('group.key', hex, 0o640);
  assert.throws(
    () => loadRepoKey(group),
    isRepoError(KEY_FILE_REFUSED, new RegExp(`${group.replace(/[.]/g, '\\.')}: others can read it \\(mode 640\\)`)),
  );
  assert.throws(() => loadRepoKey(keyFile('world.key', hex, 0o604)), isRepoError(KEY_FILE_REFUSED, /mode 604/));
  for (const [name, content] of [
    ['short.key', randomBytes(31)],
    ['long.key', randomBytes(33)],
    ['hex-short.key', hex.slice(2)],
    ['hex-junk.key', `${hex} \n`],
    ['empty.key', ''],
  ] as const) {
    const f = keyFile(name, content);
    assert.throws(
      () => loadRepoKey(f),
      isRepoError(KEY_FILE_REFUSED, new RegExp(`${name.replace(/[.]/g, '\\.')}: holds \\d+ bytes`)),
      name,
    );
  }
  assert.throws(() => loadRepoKey(join(dir, 'missing.key')), isRepoError('ENOENT', /missing\.key: cannot read it/));
  assert.throws(() => loadRepoKey(dir), isRepoError(KEY_FILE_REFUSED, /not a regular file/));
});

test('through a repository: upload stores ciphertext (hashed as stored), download gives the plaintext back', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sb-enc-repo-'));
  const config = (keyFile: string | undefined, old: string[] = []): RepositoryConfig => ({
    file: '/etc/spiderbackup/spiderbackup.ini',
    store: { type: 'posix', path: root },
    prefix: 'c1',
    encryptionKeyFile: keyFile,
    encryptionOldKeyFiles: old,
    rateLimit: undefined,
    partSize: 64 * MiB,
    retentionKeep: undefined,
    retentionDays: undefined,
  });
  const repo = await openRepository(config(keyA.file), [], { store: new PosixStore(root) });
  const plain = randomBytes(2 * MiB + 5);
  const key = `${instanceKey(repo, 'b1', 'db1', 20000)}dump.sql.zst`;
  const up = await upload(repo, key, Readable.from([plain]));
  assert.equal(up.keyId, keyA.id);
  assert.equal(up.bytes, encryptedSize(plain.length));
  const stored = readFileSync(join(root, key));
  assert.equal(up.sha256, createHash('sha256').update(stored).digest('hex'));
  assert.equal(storedKeyId(stored), keyA.id);
  assert.ok(!stored.includes(plain.subarray(0, 64)));
  const read = async (r: Repository) => {
    const out: Buffer[] = [];
    for await (const c of await download(r, key)) out.push(c as Buffer);
    return Buffer.concat(out);
  };
  assert.ok((await read(repo)).equals(plain));
  // After a rotation: the new key first, the old one kept readable.
  const rotated = await openRepository(config(keyB.file, [keyA.file]), [], { store: new PosixStore(root) });
  assert.ok((await read(rotated)).equals(plain));
  const wrong = await openRepository(config(keyB.file), [], { store: new PosixStore(root) });
  await assert.rejects(read(wrong), isRepoError(WRONG_KEY, new RegExp(`^c1/backups/b1/db1_20000/dump\\.sql\\.zst: .*${keyA.id}.*b\\.key`)));
});

test('a backup written before encryption was turned on stays readable once a key is set (the manifest says which)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sb-enc-late-'));
  const config = (keyFile: string | undefined): RepositoryConfig => ({
    file: '/etc/spiderbackup/spiderbackup.ini',
    store: { type: 'posix', path: root },
    prefix: 'c1',
    encryptionKeyFile: keyFile,
    encryptionOldKeyFiles: [],
    rateLimit: undefined,
    partSize: 64 * MiB,
    retentionKeep: undefined,
    retentionDays: undefined,
  });
  const plainRepo = await openRepository(config(undefined), [], { store: new PosixStore(root) });
  const data = randomBytes(MiB + 3);
  const key = `${instanceKey(plainRepo, 'old1', 'db1', 20000)}dump.sql.zst`;
  const up = await upload(plainRepo, key, Readable.from([data]));
  assert.equal(up.keyId, undefined);
  const keyed = await openRepository(config(keyA.file), [], { store: new PosixStore(root) });
  const out: Buffer[] = [];
  for await (const c of await downloadChecked(keyed, key, up, false)) out.push(c as Buffer);
  assert.ok(Buffer.concat(out).equals(data));
  // Told it is encrypted, a plaintext object is refused, never passed on as if authenticated.
  const refused = async () => {
    for await (const _ of await downloadChecked(keyed, key, up, true));
  };
  await assert.rejects(refused, isRepoError(NOT_ENCRYPTED, /not encrypted by spiderbackup/));
});
