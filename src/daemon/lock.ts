// One daemon per host: a kernel lock (flock) on a file beside the host's run lock, whatever
// state_dir a daemon was given. Node has no flock, so a tiny holder process takes it: util-linux
// flock(1) execs `cat`, which reads our end of a pipe and so lives exactly as long as we do (our
// death closes the pipe). The kernel frees the lock with it: nothing stale to guess about.
// The file is never removed; it also names the holder for a daemon that is refused. Someone may
// remove it all the same: a lock on a file no longer at the path keeps nobody out, so the holder
// re-checks each tick that the path is still the file it locked (lost()).
import { mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatDuration } from '../format.js';
import { BUSY, daemonLockFile, readLockHolder, type LockHolder } from '../state/daemon-lock-holder.js';
import { spawnArgv, waitForExit } from '../host/processes.js';

export class LockHeldError extends Error {
  override readonly name = 'LockHeldError';
  constructor(
    readonly file: string,
    readonly holder: LockHolder | undefined,
  ) {
    super(
      holder === undefined
        ? `another spiderbackup daemon runs on this host (lock ${file}); only one daemon may run per host`
        : `another spiderbackup daemon runs on this host (pid ${holder.pid}, agent config ${holder.agentConfig ?? '(defaults)'}, ` +
            `state_dir ${holder.stateDir ?? '?'}, since ${holder.startedAt}; lock ${file}); only one daemon may run per host`,
    );
  }
}

export interface DaemonLock {
  file: string;
  /** Why the lock no longer keeps a second daemon out (its file removed or replaced, its holder gone), or undefined. */
  lost(): string | undefined;
  release(): void;
}

const ACQUIRE_TIMEOUT_MS = 10_000;

export async function acquireDaemonLock(hostLock: string, holder: Omit<LockHolder, 'pid' | 'startedAt'>): Promise<DaemonLock> {
  const file = daemonLockFile(hostLock);
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  const child = spawnArgv(['flock', '--nonblock', '--no-fork', '--conflict-exit-code', String(BUSY), file, 'cat'], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  let exit: { code: number | null; error?: Error } | undefined;
  void waitForExit(child, 0).then((r) => (exit = r));
  const deadline = Date.now() + ACQUIRE_TIMEOUT_MS;
  // flock(1) becomes `cat` only once it holds the lock.
  while (exit === undefined && comm(child.pid) !== 'cat') {
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`could not take the daemon lock ${file} within ${formatDuration(ACQUIRE_TIMEOUT_MS)}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const ended = exit as { code: number | null; error?: Error } | undefined;
  if (ended !== undefined) {
    if (ended.code === BUSY) throw new LockHeldError(file, readLockHolder(file));
    throw new Error(`cannot take the daemon lock ${file}: flock ${ended.error ? ended.error.message : `exited with ${ended.code}`}`);
  }
  const mine: LockHolder = { pid: process.pid, startedAt: new Date().toISOString(), ...holder };
  writeFileSync(file, `${JSON.stringify(mine)}\n`);
  // The holder must not keep this process alive, nor be waited for at exit.
  child.unref();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  const held = lockedFile(child.pid as number, file);
  return {
    file,
    lost: () => {
      if (exit !== undefined) return `its holder (flock, pid ${child.pid}) ended`;
      let now;
      try {
        now = statSync(file);
      } catch {
        return `${file} was removed`;
      }
      if (now.ino !== held.ino || now.dev !== held.dev) return `${file} was replaced (inode ${held.ino}, now ${now.ino})`;
      return undefined;
    },
    release: () => {
      child.stdin?.destroy();
      child.kill('SIGTERM');
    },
  };
}

/** The inode the holder has open: its descriptor on the file, else (no /proc access) the path now. */
function lockedFile(pid: number, file: string): { ino: number; dev: number } {
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const at = `/proc/${pid}/fd/${fd}`;
      if (readlinkSync(at) === file) return statSync(at);
    }
  } catch {
    // fall back to the path, taken right after the lock
  }
  return statSync(file);
}

function comm(pid: number | undefined): string | undefined {
  if (pid === undefined) return undefined;
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}
