// A mariadb-dump backup loaded into the running target with the `mariadb` client over TCP with
// the agent's drop-in login (a private defaults file holds the password; never an argument), the
// whole load unbinlogged: the restored instance's binlog starts clean at the backup's position.
import type { Endpoint } from '../db/connect.js';
import { writeDefaultsFile } from '../runner/defaults-file.js';
import { DECOMPRESS_ARGV } from '../runner/tools.js';
import { runPipe } from './tools.js';

const CLIENT = 'mariadb';

/** Loads `dumpFile` (zstd); onBytes gets the uncompressed bytes loaded so far. Returns them all. */
export async function loadDump(
  target: Endpoint,
  dumpFile: string,
  opts: { signal?: AbortSignal; onBytes?: (total: number) => void },
): Promise<number> {
  const defaults = writeDefaultsFile(target, ['client']);
  try {
    // --defaults-file first: only ours is read, never the host's client settings.
    const client = [CLIENT, `--defaults-file=${defaults.path}`, '--binary-mode', '--init-command=SET SESSION sql_log_bin = 0'];
    return await runPipe(DECOMPRESS_ARGV.concat([dumpFile]), client, opts);
  } finally {
    defaults.remove();
  }
}
