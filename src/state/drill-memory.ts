// state_dir/drill.json: the last restore drill of this host's agent and its last success, so that
// `status` and the drill metrics say the same after a restart (the stale-drill alert needs the
// last success across restarts). Written once per drill.
import { join } from 'node:path';
import { errorMessage } from '../errors.js';
import type { DrillMemory } from '../recovery/drill-model.js';
import { readJsonFile, writeJsonAtomic } from './files.js';

export const drillFile = (stateDir: string): string => join(stateDir, 'drill.json');

export function writeDrillMemory(stateDir: string, m: DrillMemory): void {
  writeJsonAtomic(drillFile(stateDir), m, { durable: true });
}

/** Undefined before the first drill; a damaged file is an Error naming it. */
export function readDrillMemory(stateDir: string): DrillMemory | undefined {
  const path = drillFile(stateDir);
  let raw: unknown;
  try {
    raw = readJsonFile(path);
  } catch (err) {
    throw new Error(`${path}: ${errorMessage(err)}`);
  }
  if (raw === undefined) return undefined;
  const m = raw as Partial<DrillMemory>;
  if (m.format !== 1 || typeof m.last?.endedAt !== 'string' || typeof m.last.durationMs !== 'number')
    throw new Error(`${path}: not a drill record (format 1)`);
  return m as DrillMemory;
}
