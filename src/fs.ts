// Files other processes read while we rewrite them (state files, the supervisors' records, the
// journal, a backup's manifest): a reader sees the old content or the new, never half of either.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** Mode of the new file (before the umask). */
  mode: number;
  /**
   * Whether the new content must survive a power cut: the file is fsynced before the rename and
   * its directory after it, which is what makes the rename itself durable. Files rewritten every
   * few seconds whose loss costs nothing (the status snapshot, the supervisors' records) leave it
   * off, to keep an idle agent and a running backup's host off the disk.
   */
  durable: boolean;
  /** Creates the directory (and its parents) with this mode when it is missing. */
  dirMode?: number;
}

/**
 * Writes `data` to a temporary name in the same directory (so the rename never crosses a file
 * system) and renames it over `path`. The temporary name starts with a dot and carries the pid:
 * readers that list the directory skip it, and two processes writing the same file never share
 * one. On failure the temporary file is removed and `path` is left as it was.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions): void {
  const dir = dirname(path);
  if (opts.dirMode !== undefined) mkdirSync(dir, { recursive: true, mode: opts.dirMode });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, 'w', opts.mode);
    try {
      writeFileSync(fd, data);
      if (opts.durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  if (opts.durable) fsyncDir(dir);
}

/**
 * What a file system says when it cannot fsync a directory at all (some network and FUSE file
 * systems): nothing was lost, there is just no such guarantee to be had there.
 */
const DIR_FSYNC_UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR']);

/**
 * Makes the entries of `dir` (a rename, a new or removed file) durable. A file system that cannot
 * fsync a directory is accepted as it is; any other error (EIO, ENOSPC, EACCES …) is thrown: the
 * callers promise durability (a journal entry, a manifest, a finished backup's directory), and a
 * swallowed I/O error would turn that promise into a silent loss after a power cut.
 */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (err) {
    if (DIR_FSYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) return;
    throw err;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    if (!DIR_FSYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    closeSync(fd);
  }
}
