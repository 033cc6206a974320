// Client-side authenticated encryption of repository objects (README "Repository"). An object is
// a header and then segments: each 1 MiB of plaintext sealed on its own with AES-256-GCM, so a
// reader authenticates every segment before passing a byte of it on (a restore never feeds a
// tool an unverified byte) and objects of any size stream through in bounded memory.
//
//   header   magic "SPBKENC" (7) · format version (1) · key id (8) · nonce prefix (8, random per object)
//   segment  ciphertext (1 MiB, the last one 0..1 MiB) · GCM tag (16)
//
// The nonce is the object's prefix and the segment counter (big-endian 32 bits); the associated
// data is the header and a last-segment flag. So a dropped, repeated or reordered segment fails
// (wrong counter), a truncated object fails (its new last segment was sealed as "not last"), and
// appended bytes fail (the real last segment is then read as "not last").
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { errorMessage } from '../errors.js';
import { RepoError } from './store.js';

export interface RepoKey {
  /** Short public id of the key (in the header and the manifest): names the key without revealing it. */
  id: string;
  key: Buffer;
  /** The key file, for messages. */
  file: string;
}

export const SEGMENT_SIZE = 1024 ** 2;
const MAGIC = Buffer.from('SPBKENC', 'latin1');
const VERSION = 1;
const KEY_ID_BYTES = 8;
const PREFIX_BYTES = 8;
export const HEADER_SIZE = MAGIC.length + 1 + KEY_ID_BYTES + PREFIX_BYTES;
const TAG_SIZE = 16;
/** The counter is 32 bits: 4 PiB per object. */
const MAX_SEGMENTS = 2 ** 32;

/** RepoError codes of this module, for callers that tell the cases apart. */
export const KEY_FILE_REFUSED = 'KeyFileRefused';
export const WRONG_KEY = 'WrongKey';
export const NOT_ENCRYPTED = 'NotEncrypted';
export const NOT_AUTHENTIC = 'NotAuthentic';

/**
 * The key's public id: derived, never the key. A domain label keeps it from being a plain hash
 * of the key that some other system might also publish.
 */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update('spiderbackup repository key id\0').update(key).digest().subarray(0, KEY_ID_BYTES).toString('hex');
}

/** Reads a key file: owner-only, 32 raw bytes or 64 hex characters (and an optional newline). */
export function loadRepoKey(file: string): RepoKey {
  let mode: number;
  let data: Buffer;
  try {
    const s = statSync(file);
    if (!s.isFile()) throw new RepoError(`encryption key file ${file}: not a regular file`, KEY_FILE_REFUSED);
    mode = s.mode;
    data = readFileSync(file);
  } catch (err) {
    if (err instanceof RepoError) throw err;
    throw new RepoError(`encryption key file ${file}: cannot read it: ${errorMessage(err)}`, (err as NodeJS.ErrnoException).code, {
      cause: err,
    });
  }
  if ((mode & 0o077) !== 0)
    throw new RepoError(
      `encryption key file ${file}: others can read it (mode ${(mode & 0o777).toString(8).padStart(3, '0')}): chmod 600 it`,
      KEY_FILE_REFUSED,
    );
  const key = parseKey(data);
  if (key === undefined)
    throw new RepoError(
      `encryption key file ${file}: holds ${data.length} bytes; a key is 32 raw bytes or 64 hex characters ` +
        `(e.g. made by \`openssl rand -hex 32 > ${file}\`)`,
      KEY_FILE_REFUSED,
    );
  return { id: keyIdOf(key), key, file };
}

function parseKey(data: Buffer): Buffer | undefined {
  if (data.length === 32) return Buffer.from(data);
  const text = data.toString('latin1').replace(/\r?\n$/, '');
  return /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : undefined;
}

/** Encrypts what passes through for `key`; the output is the stored object, header first. */
export function encryptStream(key: RepoKey): Transform {
  const header = Buffer.concat([MAGIC, Buffer.from([VERSION]), Buffer.from(key.id, 'hex'), randomBytes(PREFIX_BYTES)]);
  const pending = new Pending();
  let counter = 0;
  let started = false;
  const seal = (plain: Buffer, last: boolean): Buffer => {
    if (counter >= MAX_SEGMENTS) throw new RepoError(`cannot encrypt more than ${MAX_SEGMENTS} segments into one object`);
    const cipher = createCipheriv('aes-256-gcm', key.key, nonce(header, counter++));
    cipher.setAAD(aad(header, last));
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      try {
        if (!started) {
          this.push(header);
          started = true;
        }
        pending.add(chunk);
        // A full segment is "not last" only once a byte after it exists; the last one is sealed in flush.
        while (pending.length > SEGMENT_SIZE) this.push(seal(pending.take(SEGMENT_SIZE), false));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done: TransformCallback) {
      try {
        if (!started) this.push(header);
        this.push(seal(pending.take(pending.length), true));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

export interface DecryptOptions {
  /** The object's name, for messages. */
  object?: string;
}

/**
 * Decrypts with whichever of `keys` the header names; a header naming none of them is a
 * RepoError naming the key files, raised before any data. Each segment is authenticated before
 * its plaintext is pushed: a damaged, truncated or reordered object fails at the first bad
 * segment and nothing of that segment comes out.
 */
export function decryptStream(keys: readonly RepoKey[], opts: DecryptOptions = {}): Transform {
  const what = opts.object === undefined ? 'encrypted object' : opts.object;
  const pending = new Pending();
  let header: Buffer | undefined;
  let key: RepoKey | undefined;
  let counter = 0;
  const open = (sealed: Buffer, last: boolean): Buffer => {
    const h = header as Buffer;
    const decipher = createDecipheriv('aes-256-gcm', (key as RepoKey).key, nonce(h, counter));
    decipher.setAAD(aad(h, last));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
    try {
      const plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE)), decipher.final()]);
      counter++;
      return plain;
    } catch (err) {
      throw new RepoError(
        `${what}: segment ${counter}${last ? ' (the last)' : ''} fails authentication: the object was altered, truncated or ` +
          `reordered (key file ${(key as RepoKey).file})`,
        NOT_AUTHENTIC,
        { cause: err },
      );
    }
  };
  const readHeader = (): void => {
    const h = pending.take(HEADER_SIZE);
    if (!h.subarray(0, MAGIC.length).equals(MAGIC))
      throw new RepoError(`${what}: not encrypted by spiderbackup (no header), yet ${describeKeys(keys)} is set`, NOT_ENCRYPTED);
    const version = h[MAGIC.length] as number;
    if (version !== VERSION)
      throw new RepoError(`${what}: encryption format version ${version}; this spiderbackup reads version ${VERSION}`, NOT_ENCRYPTED);
    const id = keyIdAt(h);
    key = keys.find((k) => k.id === id);
    if (key === undefined)
      throw new RepoError(
        `${what}: encrypted with key id ${id}, which ${keys.length === 0 ? 'no key file is set for' : `none of the key files has (tried ${describeKeys(keys)})`}; ` +
          `set [repository] encryption_key_file or encryption_old_key_files to the file of key ${id}`,
        WRONG_KEY,
      );
    header = h;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      try {
        pending.add(chunk);
        if (header === undefined) {
          if (pending.length < HEADER_SIZE) return done();
          readHeader();
        }
        while (pending.length > SEGMENT_SIZE + TAG_SIZE) this.push(open(pending.take(SEGMENT_SIZE + TAG_SIZE), false));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done: TransformCallback) {
      try {
        if (header === undefined) {
          const n = Math.min(pending.length, MAGIC.length);
          if (n > 0 && !pending.take(n).equals(MAGIC.subarray(0, n)))
            throw new RepoError(`${what}: not encrypted by spiderbackup (no header), yet ${describeKeys(keys)} is set`, NOT_ENCRYPTED);
          throw new RepoError(`${what}: truncated: ${pending.length} bytes, shorter than the encryption header`, NOT_AUTHENTIC);
        }
        if (pending.length < TAG_SIZE)
          throw new RepoError(`${what}: truncated: the last segment is missing (key file ${(key as RepoKey).file})`, NOT_AUTHENTIC);
        this.push(open(pending.take(pending.length), true));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

/** The key id in an object's first bytes, or undefined when the object is not encrypted. */
export function storedKeyId(head: Buffer): string | undefined {
  if (head.length < MAGIC.length + 1 + KEY_ID_BYTES || !head.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  return keyIdAt(head);
}

/** Stored bytes of a `plain`-byte object once encrypted (header, and a tag per segment; an empty object has one empty segment). */
export function encryptedSize(plain: number): number {
  return HEADER_SIZE + plain + Math.max(1, Math.ceil(plain / SEGMENT_SIZE)) * TAG_SIZE;
}

const keyIdAt = (head: Buffer): string => head.subarray(MAGIC.length + 1, MAGIC.length + 1 + KEY_ID_BYTES).toString('hex');

const describeKeys = (keys: readonly RepoKey[]): string => keys.map((k) => `${k.file} (key id ${k.id})`).join(', ') || '(none)';

function nonce(header: Buffer, counter: number): Buffer {
  const n = Buffer.alloc(PREFIX_BYTES + 4);
  header.copy(n, 0, HEADER_SIZE - PREFIX_BYTES, HEADER_SIZE);
  n.writeUInt32BE(counter, PREFIX_BYTES);
  return n;
}

const aad = (header: Buffer, last: boolean): Buffer => Buffer.concat([header, Buffer.from([last ? 1 : 0])]);

/** Chunks waiting to fill a segment, cut without copying more than once. */
class Pending {
  private chunks: Buffer[] = [];
  length = 0;
  add(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }
  take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0] as Buffer;
      const used = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, used);
      filled += used;
      if (used === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(used);
    }
    this.length -= n;
    return out;
  }
}
