// Locks in the repository (README "Repository"): `expire` never deletes under a running `verify`
// or restore, and neither reads while `expire` deletes. Each holder writes its own object
// `<prefix>/locks/<kind>.<host>.<pid>.<random>.json` (holder, time, expiry), then lists the others:
// when a conflicting one is alive it removes its own and refuses, naming the holder. Two that start
// together may both refuse; never both go on. A holder renews its expiry while it runs, so a dead
// one (kill -9, a lost host) blocks nobody once its expiry has passed.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { errorMessage } from '../errors.js';
import { locksKey, type Repository } from './repository.js';
import { RepoError } from './store.js';

export type LockKind = 'expire' | 'verify' | 'restore';

export interface LockHolder {
  kind: LockKind;
  host: string;
  pid: number;
  /** ISO times. */
  takenAt: string;
  expiresAt: string;
  /** The lock's key in the store. */
  key: string;
}

/** Refused: a conflicting lock is held. The message names every holder. */
export class RepoLockedError extends RepoError {
  constructor(
    message: string,
    readonly holders: LockHolder[],
  ) {
    super(message, 'Locked');
  }
}

/** How long a lock lives without renewal (renewed every third of it while held). */
export const LOCK_TTL_MS = 10 * 60_000;

export interface HeldLock {
  readonly holder: LockHolder;
  release(): Promise<void>;
}

const conflicts = (mine: LockKind, theirs: LockKind): boolean => mine === 'expire' || theirs === 'expire';

export const describeHolder = (h: LockHolder): string => `${h.kind} by ${h.host} pid ${h.pid} since ${h.takenAt} (expires ${h.expiresAt})`;

/** Every lock object whose expiry has not passed; `dead` the others (for expire to remove). */
export async function readLocks(repo: Repository, now = new Date()): Promise<{ live: LockHolder[]; dead: string[] }> {
  const live: LockHolder[] = [];
  const dead: string[] = [];
  for (const o of await repo.store.list(locksKey(repo))) {
    if (!o.key.endsWith('.json')) continue;
    const data = await repo.store.getObject(o.key);
    if (!data) continue;
    let h: LockHolder;
    try {
      const raw = JSON.parse(data.toString('utf8')) as Omit<LockHolder, 'key'>;
      h = {
        kind: raw.kind,
        host: String(raw.host),
        pid: Number(raw.pid),
        takenAt: String(raw.takenAt),
        expiresAt: String(raw.expiresAt),
        key: o.key,
      };
    } catch {
      // Unreadable: treated as held until its object is older than a lock can live unrenewed.
      h = {
        kind: 'expire',
        host: '?',
        pid: 0,
        takenAt: o.modified.toISOString(),
        expiresAt: new Date(o.modified.getTime() + LOCK_TTL_MS).toISOString(),
        key: o.key,
      };
    }
    if (Date.parse(h.expiresAt) > now.getTime()) live.push(h);
    else dead.push(o.key);
  }
  return { live, dead };
}

/** Takes a lock of `kind`, or throws RepoLockedError naming the conflicting holders. */
export async function takeLock(repo: Repository, kind: LockKind, opts: { ttlMs?: number } = {}): Promise<HeldLock> {
  const ttl = opts.ttlMs ?? LOCK_TTL_MS;
  const host = hostname();
  const key = `${locksKey(repo)}${kind}.${host.replace(/[^A-Za-z0-9._-]/g, '_')}.${process.pid}.${randomBytes(4).toString('hex')}.json`;
  const takenAt = new Date();
  const holder: LockHolder = { kind, host, pid: process.pid, takenAt: takenAt.toISOString(), expiresAt: '', key };
  const write = async () => {
    holder.expiresAt = new Date(Date.now() + ttl).toISOString();
    const { key: _k, ...body } = holder;
    void _k;
    await repo.store.putObject(key, Buffer.from(`${JSON.stringify(body)}\n`));
  };
  await write();
  let others: LockHolder[];
  try {
    others = (await readLocks(repo)).live.filter((h) => h.key !== key && conflicts(kind, h.kind));
  } catch (err) {
    await repo.store.remove([key]).catch(() => undefined);
    throw err;
  }
  if (others.length > 0) {
    await repo.store.remove([key]).catch(() => undefined);
    throw new RepoLockedError(`${repo.where}: locked: ${others.map(describeHolder).join('; ')}`, others);
  }
  let renewing: Promise<void> = Promise.resolve();
  const timer = setInterval(
    () => {
      // A renewal that fails is retried at the next; the lock stays valid until its expiry.
      renewing = write().catch((err: unknown) => void errorMessage(err));
    },
    Math.max(1000, Math.floor(ttl / 3)),
  );
  timer.unref();
  return {
    holder,
    async release() {
      clearInterval(timer);
      await renewing;
      await repo.store.remove([key]);
    },
  };
}

/** Runs `fn` holding a lock of `kind`, released however it ends. */
export async function withLock<T>(repo: Repository, kind: LockKind, fn: () => Promise<T>): Promise<T> {
  const lock = await takeLock(repo, kind);
  try {
    return await fn();
  } finally {
    await lock.release().catch(() => undefined);
  }
}
