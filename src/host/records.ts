// The supervisors' records on the host (one small JSON file per backup, beside the host lock):
// written by the supervisor, read by every agent of the host. They are what lets an agent tell a
// backup that is still running from one whose supervisor is already writing its final status.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import { writeFileAtomic } from '../fs.js';
import { recordFile, type TaskRecord } from './protocol.js';

/**
 * Not durable: rewritten every few seconds while a backup runs, and after a power cut nothing of
 * it is left to describe (the final status is in the journal, which is durable).
 */
export function writeRecord(dir: string, record: TaskRecord): void {
  writeFileAtomic(recordFile(dir, record.key), JSON.stringify(record), { mode: 0o644, durable: false, dirMode: 0o755 });
}

/**
 * Removes the record only if it still says what `seen` says: a supervisor that finished after the
 * agent read its `running` record has rewritten it as `finished` (with its bytes), and that one
 * must be read before it goes.
 */
export function removeRecordIfUnchanged(dir: string, seen: TaskRecord): void {
  const file = recordFile(dir, seen.key);
  let now: string;
  try {
    now = readFileSync(file, 'utf8');
  } catch {
    return;
  }
  if (now === JSON.stringify(seen)) rmSync(file, { force: true });
}

export interface RecordsRead {
  records: TaskRecord[];
  /** A directory that exists but cannot be read: the agent says so instead of guessing. */
  error?: string;
}

export function readRecords(dir: string): RecordsRead {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [] };
    return { records: [], error: `cannot read ${dir}: ${errorMessage(err)}` };
  }
  const records: TaskRecord[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    try {
      const r = JSON.parse(readFileSync(join(dir, name), 'utf8')) as TaskRecord;
      if (typeof r.key?.backupId === 'string' && Number.isInteger(r.supervisorPid)) records.push(r);
    } catch {
      // being replaced right now, or damaged: the process table still tells what runs
    }
  }
  return { records };
}
