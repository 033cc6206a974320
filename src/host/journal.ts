// The durable local journal of status updates. A supervisor writes the final status here (fsynced)
// *before* it tries the database, and removes it once the row is updated; whatever is left is
// delivered by the next check step, in order. Delivery is a conditional update, so delivering the
// same entry twice has the effect of once.
import { readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir, writeFileAtomic } from '../fs.js';
import type { TaskKey } from '../task/task.js';

export interface JournalEntry {
  /** File name; sorts in write order. */
  id: string;
  key: TaskKey;
  /** The pid the row must still carry for the update to apply. */
  observedPid: number;
  status: string;
  writtenAt: string;
}

export function journalDir(stateDir: string): string {
  return join(stateDir, 'journal');
}

let seq = 0;

export function appendJournal(stateDir: string, entry: Omit<JournalEntry, 'id' | 'writtenAt'>): JournalEntry {
  const id = `${Date.now().toString().padStart(15, '0')}-${process.pid}-${(seq++).toString().padStart(6, '0')}.json`;
  const full: JournalEntry = { id, writtenAt: new Date().toISOString(), ...entry };
  writeFileAtomic(join(journalDir(stateDir), id), JSON.stringify(full), { mode: 0o600, durable: true, dirMode: 0o700 });
  return full;
}

/** Durable too, so a delivered entry is not delivered again after a crash (harmless, but noisy). */
export function removeJournal(stateDir: string, id: string): void {
  rmSync(join(journalDir(stateDir), id), { force: true });
  fsyncDir(journalDir(stateDir));
}

export interface JournalRead {
  entries: JournalEntry[];
  /** Files that are not valid entries; moved aside as *.bad so they are looked at, not lost. */
  bad: string[];
}

/** Entry files; temporary (`.…tmp`) and set-aside (`….bad`) files are not entries. */
const isEntryName = (name: string): boolean => name.endsWith('.json') && !name.startsWith('.');

/** Final statuses waiting to be delivered, counted without reading them (cheap, every tick). */
export function countJournal(stateDir: string): number {
  return entryNames(journalDir(stateDir)).length;
}

/** The journal directory exists but cannot be read: what waits in it is unknown. */
export class JournalReadError extends Error {
  override readonly name = 'JournalReadError';
}

/** Entry names; a missing directory is an empty journal, any other failure a JournalReadError. */
function entryNames(dir: string): string[] {
  try {
    return readdirSync(dir).filter(isEntryName);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new JournalReadError(`cannot read the journal ${dir}: ${(err as Error).message}`);
  }
}

export function readJournal(stateDir: string): JournalRead {
  const dir = journalDir(stateDir);
  const names = entryNames(dir);
  const entries: JournalEntry[] = [];
  const bad: string[] = [];
  for (const name of names.sort()) {
    try {
      const e = JSON.parse(readFileSync(join(dir, name), 'utf8')) as JournalEntry;
      if (typeof e.status !== 'string' || typeof e.key?.backupId !== 'string') throw new Error('not a journal entry');
      entries.push({ ...e, id: name });
    } catch {
      try {
        renameSync(join(dir, name), join(dir, `${name}.bad`));
      } catch {
        // removed meanwhile
      }
      bad.push(name);
    }
  }
  return { entries, bad };
}

/** Keys of the tasks that have an entry waiting (unreadable entries are moved aside). */
export function pendingJournalKeys(stateDir: string): Set<string> {
  return new Set(readJournal(stateDir).entries.map((e) => journalKey(e.key)));
}

export const journalKey = (k: TaskKey): string => `${k.backupId}\u0000${k.host}\u0000${k.port}\u0000${k.shardValue}`;
