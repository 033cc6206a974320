// The one contract between the repository and where its bytes live (a shared directory, an
// S3-compatible bucket). A store moves opaque bytes under keys: encryption, hashing, rate limits
// and the layout are the repository's (repository.ts), so each store stays small and both behave
// alike under the same tests.
import type { Readable } from 'node:stream';
import { OperationError } from '../errors.js';

/**
 * A store that cannot be used, or refused: the message names the store and, when it answered, its
 * refusal. An operation failure (exit 1, the message shown), not a bug.
 */
export class RepoError extends OperationError {
  override readonly name = 'RepoError';
  constructor(
    message: string,
    /** The store's own code when it gave one (`SignatureDoesNotMatch`, `NoSuchBucket`, `EACCES` …). */
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface StoredObject {
  /** The key below the store's root, `/`-separated. */
  key: string;
  bytes: number;
  modified: Date;
}

export interface PutStreamOptions {
  /** Aborting stops the upload and leaves no object at the key (and nothing the store would call complete). */
  signal?: AbortSignal;
}

export interface Store {
  /** For messages and `status`: "posix /mnt/backup" or "s3 bucket b at https://…". */
  readonly where: string;
  /** Reachable, and the bucket or directory is there and usable; else a RepoError naming what is wrong. */
  check(): Promise<void>;
  /**
   * Writes everything `body` gives under `key`. The object appears only when the whole body was
   * stored (S3: multipart completion; posix: rename of a `.partial` file); on error or abort none
   * does. Returns the bytes the store reports for the new object.
   */
  putStream(key: string, body: Readable, opts?: PutStreamOptions): Promise<{ bytes: number }>;
  /** A small object in one write (a manifest, an index entry): atomic, present whole or absent. */
  putObject(key: string, data: Buffer): Promise<void>;
  /** Reads the object; a missing one is a RepoError with code `NotFound`. */
  getStream(key: string): Promise<Readable>;
  /** A small object whole, or undefined when it is not there. */
  getObject(key: string): Promise<Buffer | undefined>;
  stat(key: string): Promise<StoredObject | undefined>;
  /** Every object whose key starts with `prefix`, any depth, sorted by key. */
  list(prefix: string): Promise<StoredObject[]>;
  /** Deletes the keys; ones already gone are fine. */
  remove(keys: readonly string[]): Promise<void>;
  /**
   * Leftovers of uploads that never completed below `prefix` (S3: incomplete multipart uploads;
   * posix: `.partial` files), removed. Returns what was removed, for the log.
   */
  cleanIncomplete(prefix: string): Promise<string[]>;
}

export const NOT_FOUND = 'NotFound';

/** Keys are built from checked parts only; this catches a bug, never an input. */
export function checkKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((p) => p === '' || p === '.' || p === '..') || key.includes('\0'))
    throw new RepoError(`invalid repository key ${JSON.stringify(key)}`);
}
