// One daemon per host: a lock file under state_dir created with O_EXCL and holding the owner's pid.
// A lock left by a daemon that died (kill -9, crash, power loss) is taken over; one whose pid lives
// and is a spiderbackup daemon is not. Taking over happens under a second O_EXCL guard file so two
// daemons starting at the same moment cannot both remove the stale lock and both run.
import { closeSync, fsyncSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface LockHolder {
  pid: number;
  startedAt: string;
}

export class LockHeldError extends Error {
  override readonly name = 'LockHeldError';
  constructor(
    readonly file: string,
    readonly pid: number | undefined,
  ) {
    super(
      pid === undefined
        ? `another spiderbackup daemon is starting (lock ${file}); only one daemon may run per host`
        : `another spiderbackup daemon is already running (pid ${pid}, lock ${file}); only one daemon may run per host`,
    );
  }
}

export interface DaemonLock {
  file: string;
  /** Removes the lock if it is still ours. */
  release(): void;
}

export const lockFile = (stateDir: string): string => join(stateDir, 'daemon.lock');

/** A file being written by a starting daemon is not stale until it has been empty this long. */
const HALF_WRITTEN_GRACE_MS = 10_000;

export async function acquireLock(stateDir: string, holderAlive: (pid: number) => Promise<boolean>, pid = process.pid): Promise<DaemonLock> {
  const file = lockFile(stateDir);
  const guard = `${file}.takeover`;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createExclusive(file, { pid, startedAt: new Date().toISOString() })) {
      return { file, release: () => releaseIfOurs(file, pid) };
    }
    const holder = readHolder(file);
    if (holder === 'missing') continue;
    if (holder === 'unreadable') {
      if (ageMs(file) < HALF_WRITTEN_GRACE_MS) throw new LockHeldError(file, undefined);
    } else if (holder.pid === pid || (await holderAlive(holder.pid))) {
      throw new LockHeldError(file, holder.pid);
    }
    if (!createExclusive(guard, { pid, startedAt: new Date().toISOString() })) {
      if (ageMs(guard) < HALF_WRITTEN_GRACE_MS) throw new LockHeldError(file, undefined);
      rmSync(guard, { force: true });
      continue;
    }
    try {
      // Re-read under the guard: remove only the stale lock we looked at, never a fresh one.
      const again = readHolder(file);
      const same = again === holder || (typeof again === 'object' && typeof holder === 'object' && again.pid === holder.pid && again.startedAt === holder.startedAt);
      if (same) rmSync(file, { force: true });
    } finally {
      rmSync(guard, { force: true });
    }
  }
  throw new LockHeldError(file, undefined);
}

/** The holder recorded in the lock, without judging whether it lives. */
export function readLockHolder(stateDir: string): LockHolder | undefined {
  const h = readHolder(lockFile(stateDir));
  return typeof h === 'object' ? h : undefined;
}

function createExclusive(file: string, holder: LockHolder): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, `${JSON.stringify(holder)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

function readHolder(file: string): LockHolder | 'missing' | 'unreadable' {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable';
  }
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid === 'number' && Number.isInteger(h.pid) && h.pid > 0) return { pid: h.pid, startedAt: String(h.startedAt ?? '') };
  } catch {
    // fall through
  }
  return 'unreadable';
}

function ageMs(file: string): number {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

function releaseIfOurs(file: string, pid: number): void {
  const h = readHolder(file);
  if (typeof h === 'object' && h.pid === pid) rmSync(file, { force: true });
}
