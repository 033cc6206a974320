// Small JSON files in state_dir that other processes read (the CLI reads what the daemon writes and
// the other way round). Written atomically, so a reader never sees half a file.
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../fs.js';

/**
 * World-readable on purpose: operators run `status` as themselves and the daemon runs as mysql;
 * these files carry state, never credentials.
 */
const FILE_MODE = 0o644;

/**
 * `durable`: an operator's pause must survive a power cut; the status snapshot, rewritten every
 * tick, is not durable, to keep an idle agent off the disk.
 */
export function writeJsonAtomic(path: string, value: unknown, opts: { durable: boolean }): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, { mode: FILE_MODE, durable: opts.durable, dirMode: 0o755 });
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
