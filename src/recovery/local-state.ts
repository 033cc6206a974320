// The host's own copy of each restore task's state it runs or ran, `<state_dir>/restores/<id>/
// <host>_<port>.json` (the repository is the shared copy): `spiderbackup status` reads it, and it
// survives the repository being unreachable.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../fs.js';
import { formatBytes, formatDuration } from '../format.js';
import { describeTarget, instanceName, type RestoreTaskState } from './job.js';

const DIR = 'restores';

export function localStateFile(stateDir: string, s: Pick<RestoreTaskState, 'restoreId' | 'target'>): string {
  return join(stateDir, DIR, s.restoreId, `${instanceName(s.target)}.json`);
}

export function writeLocalState(stateDir: string, s: RestoreTaskState): void {
  const file = localStateFile(stateDir, s);
  writeFileAtomic(file, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o644, durable: false, dirMode: 0o755 });
}

export function readLocalState(file: string): RestoreTaskState | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RestoreTaskState;
  } catch {
    return undefined;
  }
}

/** Every task state this host keeps: per target, the newest restore's (the task it runs or last ran). */
export function latestLocalStates(stateDir: string): RestoreTaskState[] {
  const root = join(stateDir, DIR);
  let ids: string[];
  try {
    ids = readdirSync(root).sort();
  } catch {
    return [];
  }
  const byTarget = new Map<string, RestoreTaskState>();
  for (const id of ids) {
    let files: string[];
    try {
      files = readdirSync(join(root, id)).filter((f) => f.endsWith('.json'));
    } catch {
      continue;
    }
    for (const f of files) {
      const s = readLocalState(join(root, id, f));
      if (!s || !s.target) continue;
      const key = instanceName(s.target);
      const was = byTarget.get(key);
      if (!was || (s.phases[0]?.startedAt ?? '') >= (was.phases[0]?.startedAt ?? '')) byTarget.set(key, s);
    }
  }
  return [...byTarget.values()];
}

/** `status`'s line: "r-… on 127.0.0.7:3306 (attempt 1): replay, 12.0 MiB, heartbeat 3 s ago" or the end. */
export function describeLocalState(s: RestoreTaskState, now: Date): string {
  const head = `${s.restoreId} on ${describeTarget(s.target)} (attempt ${s.attempt})`;
  const started = s.phases[0]?.startedAt;
  const took = started ? ` after ${formatDuration(Date.parse(s.heartbeatAt) - Date.parse(started))}` : '';
  if (s.phase === 'done') return `${head}: done${took}${s.gtid ? `, GTID ${s.gtid}` : ''}`;
  if (s.phase === 'failed') return `${head}: FAILED${took}: ${s.error ?? 'no reason given'}`;
  const beat = Math.max(0, now.getTime() - Date.parse(s.heartbeatAt));
  return `${head}: ${s.phase}${s.bytes > 0 ? `, ${formatBytes(s.bytes)}` : ''}, worker pid ${s.agent.pid}, heartbeat ${formatDuration(beat)} ago`;
}
