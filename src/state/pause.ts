// Operator pause ("skip tonight's backup"): a file in state_dir, so it survives restarts and works
// whether or not the daemon runs. The daemon reads it on every tick and at cron fire time; an
// expired pause is simply ignored, so nobody has to remember to resume.
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { readJsonFile, writeJsonAtomic } from './files.js';

/** What a pause does, in the words `pause`, `status` and the help use. */
export const PAUSE_MEANING = 'no new backup starts and no schedule fires; housekeeping, quit handling and journal delivery go on';

export interface PauseState {
  /** ISO time the pause ends. */
  until: string;
  reason: string | undefined;
  /** ISO time it was set, and by whom (user name, for the audit trail in status). */
  since: string;
  by: string | undefined;
}

export class PauseFileError extends Error {
  override readonly name = 'PauseFileError';
}

export const pauseFile = (stateDir: string): string => join(stateDir, 'pause.json');

export function readPause(stateDir: string): PauseState | undefined {
  const file = pauseFile(stateDir);
  let raw: unknown;
  try {
    raw = readJsonFile(file);
  } catch (err) {
    throw new PauseFileError(`${file}: unreadable (${(err as Error).message}); remove it or run \`spiderbackup resume\``);
  }
  if (raw === undefined) return undefined;
  const p = raw as Partial<PauseState>;
  if (typeof p.until !== 'string' || Number.isNaN(Date.parse(p.until))) {
    throw new PauseFileError(`${file}: has no valid "until"; remove it or run \`spiderbackup resume\``);
  }
  return {
    until: p.until,
    reason: typeof p.reason === 'string' ? p.reason : undefined,
    since: String(p.since ?? ''),
    by: typeof p.by === 'string' ? p.by : undefined,
  };
}

/** The pause in force at `now`, if any. */
export function activePause(state: PauseState | undefined, now: Date): PauseState | undefined {
  return state !== undefined && Date.parse(state.until) > now.getTime() ? state : undefined;
}

export function writePause(
  stateDir: string,
  forMs: number,
  reason: string | undefined,
  by: string | undefined,
  now = new Date(),
): PauseState {
  const state: PauseState = { until: new Date(now.getTime() + forMs).toISOString(), reason, since: now.toISOString(), by };
  writeJsonAtomic(pauseFile(stateDir), state, { durable: true });
  return state;
}

/** Removes the pause; returns what was in force (undefined when nothing was). */
export function clearPause(stateDir: string, now = new Date()): PauseState | undefined {
  let previous: PauseState | undefined;
  try {
    previous = activePause(readPause(stateDir), now);
  } catch {
    // a damaged file is removed all the same: that is what resume is for
  }
  rmSync(pauseFile(stateDir), { force: true });
  return previous;
}

/**
 * The pause the daemon obeys now. A damaged pause file counts as a pause (with the error), so an
 * operator's stop is never ignored because of it; `resume` removes it.
 */
export function pauseInForce(stateDir: string, now: Date): { pause: PauseState | undefined; error?: string } {
  try {
    return { pause: activePause(readPause(stateDir), now) };
  } catch (err) {
    const error = (err as Error).message;
    return { pause: { until: 'unknown (damaged pause file)', reason: error, since: '', by: undefined }, error };
  }
}
