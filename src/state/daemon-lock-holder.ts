// Who holds the daemon lock (see ../daemon/lock.ts, which takes it): asked by `status` and
// `pause` as well as by a daemon that is refused. The lock file names its holder.
import { readFileSync } from 'node:fs';
import { hostPaths } from '../host/protocol.js';
import { spawnArgv, waitForExit } from '../host/processes.js';

/** flock's exit code when the lock is taken (--conflict-exit-code). */
export const BUSY = 75;

export interface LockHolder {
  pid: number;
  startedAt: string;
  /** The holder's agent config and state_dir, to name it to a daemon that is refused. */
  agentConfig?: string;
  stateDir?: string;
}

export const daemonLockFile = (hostLock: string): string => hostPaths(hostLock).daemonLock;

/** Whether some daemon holds the lock now, and who it says it is. */
export async function daemonLockHolder(hostLock: string): Promise<{ held: boolean; holder: LockHolder | undefined }> {
  const file = daemonLockFile(hostLock);
  const child = spawnArgv(['flock', '--nonblock', '--shared', '--conflict-exit-code', String(BUSY), file, 'true'], { stdio: 'ignore' });
  const r = await waitForExit(child, 0);
  return { held: r.code === BUSY, holder: r.code === BUSY ? readLockHolder(file) : undefined };
}

export function readLockHolder(file: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockHolder>;
    if (typeof h.pid === 'number' && Number.isInteger(h.pid))
      return {
        pid: h.pid,
        startedAt: String(h.startedAt ?? ''),
        ...(h.agentConfig ? { agentConfig: h.agentConfig } : {}),
        ...(h.stateDir ? { stateDir: h.stateDir } : {}),
      };
  } catch {
    // empty (never held) or being written
  }
  return undefined;
}
