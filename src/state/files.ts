// Small JSON files in state_dir that other processes read (the CLI reads what the daemon writes and
// the other way round). Written to a temporary name and renamed, so a reader never sees half a file.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';

/**
 * World-readable on purpose: operators run `status` as themselves and the daemon runs as mysql;
 * these files carry state, never credentials.
 */
const FILE_MODE = 0o644;

/**
 * `durable` fsyncs before the rename (an operator's pause must survive a power cut); the status
 * snapshot, rewritten every tick, skips that to keep an idle agent off the disk.
 */
export function writeJsonAtomic(path: string, value: unknown, opts: { durable: boolean }): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', FILE_MODE);
  try {
    writeSync(fd, `${JSON.stringify(value, null, 2)}\n`);
    if (opts.durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** The parsed file, undefined when it does not exist; a damaged file is an error for the caller. */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as unknown;
}
