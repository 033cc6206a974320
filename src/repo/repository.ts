// The repository as the rest of the agent sees it: a store, the cluster's prefix, the layout of
// keys below it, and the byte pipeline every transfer goes through (rate limit, encryption, the
// sha256 and size of the stored bytes). Runners, verify, expire and restores use only this.
//
// Layout (README "Repository"):
//   <prefix>/backups/<backup_id>/<host>_<port>/<file>          the data, as stored (maybe encrypted)
//   <prefix>/backups/<backup_id>/<host>_<port>/manifest.json   written last: present = complete
//   <prefix>/points/<name>.json                                 a restore point (restore-point --format json)
//   <prefix>/binlogs/shard-<n>/…                                the binlog archive (archive/archive-store.ts)
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { repositoryPrefix, type RepositoryConfig } from '../config/repository.js';
import type { InstanceConfig } from '../config/instance.js';
import { isValidBackupId } from '../task/backup-id.js';
import { decryptStream, encryptStream, loadRepoKey, type RepoKey } from './encryption.js';
import { PosixStore } from './posix-store.js';
import { RateLimiter, throttle } from './rate-limit.js';
import { RepoError, type Store } from './store.js';

export const MANIFEST_OBJECT = 'manifest.json';

export interface Repository {
  readonly store: Store;
  readonly prefix: string;
  /** "posix /mnt/backup, prefix c1" — for messages and status. */
  readonly where: string;
  /** The key new objects are encrypted with; undefined: no encryption. */
  readonly key: RepoKey | undefined;
  /** Every key that can decrypt (the current one first, then the old ones). */
  readonly keys: readonly RepoKey[];
  readonly limiter: RateLimiter | undefined;
}

export interface OpenOptions {
  /** Instead of the configured store (tests of the pipeline). */
  store?: Store;
}

/**
 * Opens the configured repository: the store (nothing is contacted yet), the prefix from the
 * config or the drop-ins, the keys read from their files. A key file that cannot be read or is
 * not owner-only is a RepoError naming it.
 */
export async function openRepository(
  config: RepositoryConfig,
  instances: readonly InstanceConfig[],
  opts: OpenOptions = {},
): Promise<Repository> {
  const prefix = repositoryPrefix(config, instances);
  const store = opts.store ?? (await storeFor(config));
  const key = config.encryptionKeyFile === undefined ? undefined : loadRepoKey(config.encryptionKeyFile);
  const keys = [...(key ? [key] : []), ...config.encryptionOldKeyFiles.map((f) => loadRepoKey(f))];
  return {
    store,
    prefix,
    where: `${store.where}, prefix ${prefix}`,
    key,
    keys,
    limiter: config.rateLimit === undefined ? undefined : new RateLimiter(config.rateLimit),
  };
}

async function storeFor(config: RepositoryConfig): Promise<Store> {
  if (config.store.type === 'posix') return new PosixStore(config.store.path);
  // The SDK is large: loaded only by hosts that use it.
  const { S3Store } = await import('./s3-store.js');
  return new S3Store(config.store, config.partSize);
}

function checkedId(backupId: string): string {
  if (!isValidBackupId(backupId)) throw new RepoError(`invalid backup id ${JSON.stringify(backupId)}`);
  return backupId;
}

/** `<prefix>/backups/` */
export const backupsKey = (repo: Repository): string => `${repo.prefix}/backups/`;

/** `<prefix>/backups/<backup_id>/` */
export const backupKey = (repo: Repository, backupId: string): string => `${backupsKey(repo)}${checkedId(backupId)}/`;

/** `<prefix>/backups/<backup_id>/<host>_<port>/` */
export function instanceKey(repo: Repository, backupId: string, host: string, port: number): string {
  if (!/^[A-Za-z0-9._:-]+$/.test(host) || !Number.isInteger(port))
    throw new RepoError(`invalid instance ${JSON.stringify(`${host}:${port}`)}`);
  return `${backupKey(repo, backupId)}${host}_${port}/`;
}

export interface Uploaded {
  /** Bytes stored (ciphertext when encrypted), as counted while sending and confirmed by the store. */
  bytes: number;
  /** sha256 of the stored bytes: `verify` checks it without the key. */
  sha256: string;
  /** The key's id when encrypted. */
  keyId: string | undefined;
}

export interface UploadOptions {
  signal?: AbortSignal;
  /** Called with the stored bytes so far (progress, RunningBytes, metrics). */
  onBytes?: (stored: number) => void;
}

/**
 * Streams `body` into the object `key`: encrypted when a key is set, within the rate limit,
 * hashed and counted on the way. The size the store reports must equal what was sent.
 */
export async function upload(repo: Repository, key: string, body: Readable, opts: UploadOptions = {}): Promise<Uploaded> {
  const count = measure(opts.onBytes);
  const stages: Transform[] = [
    ...(repo.key ? [encryptStream(repo.key)] : []),
    ...(repo.limiter ? [throttle(repo.limiter)] : []),
    count.stream,
  ];
  const stored = await repo.store.putStream(key, chain(body, stages), opts.signal ? { signal: opts.signal } : {});
  const { bytes, sha256 } = count.result();
  if (stored.bytes !== bytes) throw new RepoError(`${repo.store.where}: ${key}: the store holds ${stored.bytes} bytes, ${bytes} were sent`);
  return { bytes, sha256, keyId: repo.key?.id };
}

/**
 * A pass-through that counts and hashes the bytes going by. `check`, given, judges them when they
 * end: an error it returns fails the stream, so whoever reads it learns before taking the end as whole.
 */
function measure(
  onBytes?: (bytes: number) => void,
  check?: (m: { bytes: number; sha256: string }) => Error | undefined,
): { stream: Transform; result: () => { bytes: number; sha256: string } } {
  const hash = createHash('sha256');
  let bytes = 0;
  let sha256: string | undefined;
  const result = () => ({ bytes, sha256: (sha256 ??= hash.digest('hex')) });
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      onBytes?.(bytes);
      done(null, chunk);
    },
    flush(done) {
      done(check?.(result()));
    },
  });
  return { stream, result };
}

/**
 * The object's bytes as they were before upload (decrypted when encrypted, within the rate
 * limit). Decryption authenticates each segment before passing it on, so a tool reading this
 * never sees a byte that was not verified.
 */
export async function download(repo: Repository, key: string, opts: { encrypted?: boolean } = {}): Promise<Readable> {
  const src = await repo.store.getStream(key);
  const encrypted = opts.encrypted ?? repo.keys.length > 0;
  return chain(src, [...(repo.limiter ? [throttle(repo.limiter)] : []), ...(encrypted ? [decryptStream(repo.keys, { object: key })] : [])]);
}

/** The stored bytes as they are (for verify: sha256 of what is stored, no key needed). */
export async function downloadRaw(repo: Repository, key: string): Promise<Readable> {
  const src = await repo.store.getStream(key);
  return chain(src, repo.limiter ? [throttle(repo.limiter)] : []);
}

/** The stages after `src`, as one readable end: any stage's error reaches whoever reads it, and destroying it stops them all. */
function chain(src: Readable, stages: Transform[]): Readable {
  if (stages.length === 0) return src;
  const out = stages[stages.length - 1] as Transform;
  pipeline([src, ...stages]).catch((err: unknown) => out.destroy(err as Error));
  return out;
}

/** sha256 and size of an object as stored, streamed. */
export async function hashStored(repo: Repository, key: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of await downloadRaw(repo, key)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** `<prefix>/points/`: every restore point as `<name>.json` (the shape of `restore-point --format json`), so points outlive the cluster. */
export const pointsKey = (repo: Repository): string => `${repo.prefix}/points/`;

/** `<prefix>/locks/` */
export const locksKey = (repo: Repository): string => `${repo.prefix}/locks/`;

/**
 * Like download, and the stored bytes are hashed on the way in: when they end, their size and
 * sha256 must be the manifest's, else the stream fails naming the object (the bytes already read
 * are then not to be used: the caller discards them).
 */
export async function downloadChecked(
  repo: Repository,
  key: string,
  expect: { bytes: number; sha256: string },
  /** From the manifest: a backup written before encryption was turned on is read as it is. */
  encrypted: boolean,
): Promise<Readable> {
  const src = await repo.store.getStream(key);
  const check = measure(undefined, ({ bytes, sha256 }) => {
    if (bytes !== expect.bytes)
      return new RepoError(`${repo.store.where}: ${key}: ${bytes} bytes stored, the manifest says ${expect.bytes}`);
    if (sha256 !== expect.sha256)
      return new RepoError(
        `${repo.store.where}: ${key}: sha256 mismatch (${sha256.slice(0, 12)}…, the manifest says ${expect.sha256.slice(0, 12)}…)`,
      );
    return undefined;
  });
  return chain(src, [
    check.stream,
    ...(repo.limiter ? [throttle(repo.limiter)] : []),
    ...(encrypted ? [decryptStream(repo.keys, { object: key })] : []),
  ]);
}
