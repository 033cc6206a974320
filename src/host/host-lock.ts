// The host lock (`[agent] host_lock`, the flock every backup of this host runs under) taken by a
// process that waits for it: a restore task, one per host at a time, as backups. Node has no
// flock, so a tiny holder does it, as the daemon lock does (daemon/lock.ts): flock(1) execs `cat`
// on our end of a pipe once it holds the lock, and so holds it exactly as long as we live — a
// SIGKILL of the waiter frees the lock with it.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { spawnArgv, waitForExit } from './processes.js';
import { SUPERVISOR_EXIT } from './protocol.js';

export interface HeldHostLock {
  release(): void;
}

const BUSY = SUPERVISOR_EXIT.hostBusy;

function holder(file: string, wait: boolean) {
  const argv = ['flock', ...(wait ? [] : ['--nonblock']), '--no-fork', '--conflict-exit-code', String(BUSY), file, 'cat'];
  const child = spawnArgv(argv, { stdio: ['pipe', 'ignore', 'ignore'] });
  let exit: { code: number | null; error?: Error } | undefined;
  void waitForExit(child, 0).then((r) => (exit = r));
  return { child, exited: () => exit };
}

function comm(pid: number | undefined): string | undefined {
  if (pid === undefined) return undefined;
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Takes the host lock, waiting as long as it takes (`signal` ends the wait); `onBusy` is told once
 * when it has to wait.
 */
export async function takeHostLock(file: string, onBusy: () => void, signal?: AbortSignal): Promise<HeldHostLock> {
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  let h = holder(file, false);
  for (let waited = false; ;) {
    if (comm(h.child.pid) === 'cat') break;
    const ended = h.exited();
    if (ended !== undefined) {
      if (ended.code !== BUSY || waited)
        throw new Error(`cannot take the host lock ${file}: flock ${ended.error ? ended.error.message : `exited with ${ended.code}`}`);
      onBusy();
      waited = true;
      h = holder(file, true);
    }
    if (signal?.aborted) {
      h.child.kill('SIGKILL');
      signal.throwIfAborted();
    }
    await delay(20);
  }
  const { child } = h;
  child.unref();
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return {
    release: () => {
      child.stdin?.destroy();
      child.kill('SIGTERM');
    },
  };
}
