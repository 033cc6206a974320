// How far a running backup has got: the bytes of the files under the instance's BackupDir written
// since the backup started. The backup tools decide their own file names, so the only measure
// common to all of them is what changed in the directory. The walk is bounded, because BackupDir
// also holds older backups (often thousands of files) and runs every few seconds.
import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { backupDirOf, type InstanceConfig } from '../config/instance.js';
import { ConfigError } from '../errors.js';

/** How often the supervisor measures (and rewrites its record). */
export const PROGRESS_EVERY_MS = 2_000;

export const WALK_LIMITS = {
  /** Directory levels below BackupDir (BackupDir/<backup>/<db>/<table files> is 3). */
  maxDepth: 6,
  /** Entries looked at per measurement; beyond it the sum is a lower bound. */
  maxEntries: 20_000,
} as const;

export interface Measure {
  bytes: number;
  /** The walk stopped at a limit: `bytes` is a lower bound. */
  truncated: boolean;
}

/**
 * Where a running backup's progress is measured: the instance's BackupDir, or nowhere when that
 * is not usable. Measuring is a nicety: the built-in runners refuse such a BackupDir themselves,
 * and a custom backup command may write elsewhere.
 */
export function measuredDirOf(instance: Pick<InstanceConfig, 'file' | 'sections'>): string | undefined {
  try {
    return backupDirOf(instance);
  } catch (err) {
    if (err instanceof ConfigError) return undefined;
    throw err;
  }
}

/**
 * Sum of the sizes of regular files under `dir` created (and so modified) at or after `sinceMs`
 * (whole seconds: some file systems keep coarse times). Creating a file changes its directory's
 * mtime, so the files of a directory untouched since the start are not even looked at (older
 * backups cost one readdir per directory), and the most recently changed subdirectories are
 * walked first, so the running backup's files are counted before a bound is reached. Symbolic
 * links are not followed; unreadable parts are skipped.
 */
export async function bytesWrittenSince(
  dir: string,
  sinceMs: number,
  limits: { maxDepth: number; maxEntries: number } = WALK_LIMITS,
): Promise<Measure> {
  const since = Math.floor(sinceMs / 1000) * 1000;
  let bytes = 0;
  let entries = 0;
  let truncated = false;
  const walk = async (path: string, mtimeMs: number, depth: number): Promise<void> => {
    let list: Dirent[];
    try {
      list = await readdir(path, { withFileTypes: true });
    } catch {
      return;
    }
    const subdirs: { path: string; mtimeMs: number }[] = [];
    for (const entry of list) {
      if (++entries > limits.maxEntries) {
        truncated = true;
        break;
      }
      const child = join(path, entry.name);
      try {
        if (entry.isDirectory()) subdirs.push({ path: child, mtimeMs: (await lstat(child)).mtimeMs });
        else if (mtimeMs >= since && entry.isFile()) {
          const st = await lstat(child);
          if (st.mtimeMs >= since) bytes += st.size;
        }
      } catch {
        // removed while we looked (temporary files): not part of the result
      }
    }
    subdirs.sort((a, b) => b.mtimeMs - a.mtimeMs);
    for (const d of subdirs) {
      if (entries > limits.maxEntries) return;
      if (depth >= limits.maxDepth) {
        truncated = true;
        return;
      }
      await walk(d.path, d.mtimeMs, depth + 1);
    }
  };
  let top: number;
  try {
    top = (await lstat(dir)).mtimeMs;
  } catch {
    return { bytes: 0, truncated: false };
  }
  await walk(dir, top, 1);
  return { bytes, truncated };
}

// With a repository the bytes are uploaded, not written into BackupDir: the built-in runner tells
// its supervisor how many it has stored, one line on its stdout each time (a pipe only the
// supervisor reads), the last line being the total.
const PROGRESS_LINE = /^stored (\d+)$/;

export const progressLine = (stored: number): string => `stored ${stored}\n`;

/** Reads the runner's progress lines as they come; `latest()` is the last count told, if any. */
export function progressReader(): { feed(chunk: Buffer): void; latest(): number | undefined } {
  let rest = '';
  let latest: number | undefined;
  return {
    feed(chunk) {
      const lines = (rest + chunk.toString('latin1')).split('\n');
      rest = (lines.pop() ?? '').slice(-64);
      for (const l of lines) {
        const m = PROGRESS_LINE.exec(l);
        if (m) latest = Number(m[1]);
      }
    },
    latest: () => latest,
  };
}
