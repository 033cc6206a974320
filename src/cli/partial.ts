// The one way a spider-side command ends when something it needs could not be read (issue 17
// item 1): what it could show is already printed (JSON stays JSON on stdout); each instance that
// could not be read is named on stderr with the server's error, then what was shown without it,
// and the command exits 1. query, list, verify, restore-plan, cancel and status --cluster use it.
import { printable } from './render/table.js';

/** Exit code of an answer that is missing what `unread` names. */
export const PARTIAL_EXIT = 1;

/**
 * Writes the unread instances and what was still `shown` ("2 rows") to stderr; returns 1 when
 * anything was unread, else 0.
 */
export function reportUnread(command: string, unread: readonly string[], shown: string): number {
  return reportProblems(
    command,
    unread.map((u) => `cannot read ${u}`),
    shown,
  );
}

/** The same for problems worded by the command (each naming its instance and the server's error). */
export function reportProblems(command: string, problems: readonly string[], shown: string): number {
  if (problems.length === 0) return 0;
  for (const p of problems) process.stderr.write(`spiderbackup: ${command}: ${printable(p)}\n`);
  process.stderr.write(
    `spiderbackup: ${command}: incomplete answer: ${shown} shown without ${problems.length === 1 ? 'it' : `these ${problems.length}`}\n`,
  );
  return PARTIAL_EXIT;
}
