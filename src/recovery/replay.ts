// The archived binlog runs of a task replayed into the target, one run after the other, from the
// backup's position to the point's GTID (inclusive), as `verify --restore-test --to-point` does on
// a throw-away copy (restore/to-point.ts): a dump's first replay prepares again the XA
// transactions its copy lacks; XA transactions the copy already holds prepared are not prepared twice.
// The replayed events keep the source's GTIDs, so the target's binlog ends at the point's GTID.
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Endpoint, Queryable } from '../db/connect.js';
import { errorMessage } from '../errors.js';
import type { Repository } from '../repo/repository.js';
import { fetchRun } from '../archive/archive-store.js';
import { replayBinlog, ReplayError } from '../restore/binlog-replay.js';
import { preparedXids } from '../sql/restore-point.js';
import type { RestoreTaskSpec } from './job.js';

export interface ReplayDone {
  runs: number;
  bytes: number;
  carriedXa: number;
  skippedXa: number;
}

export async function replayRuns(
  spec: Pick<RestoreTaskSpec, 'archiveRuns' | 'toGtid' | 'source'>,
  repo: Repository,
  target: Endpoint,
  db: Queryable,
  dir: string,
  opts: { onBytes?: (total: number) => void; signal?: AbortSignal },
): Promise<ReplayDone> {
  const out: ReplayDone = { runs: 0, bytes: 0, carriedXa: 0, skippedXa: 0 };
  if (spec.archiveRuns.length === 0) return out;
  mkdirSync(dir, { recursive: true });
  const alreadyPrepared = await preparedXids(db);
  let first = true;
  for (const run of spec.archiveRuns) {
    opts.signal?.throwIfAborted();
    const runDir = join(dir, `run-${out.runs}`);
    mkdirSync(runDir, { recursive: true });
    try {
      const local = await fetchRun(repo, run, runDir);
      const size = statSync(local).size;
      try {
        const r = await replayBinlog({
          files: [local],
          startGtid: run.startGtid,
          stopGtid: spec.toGtid,
          target: { host: target.host, port: target.port, user: target.user, password: target.password },
          carryPreparedXa: first && spec.source.tool === 'mariadb-dump',
          alreadyPrepared: first ? alreadyPrepared : [],
          signal: opts.signal,
        });
        out.carriedXa += r.carriedXa;
        out.skippedXa += r.skippedXa;
      } catch (err) {
        throw new ReplayError(
          `replaying ${run.file.file} of ${run.file.host}:${run.file.port} (after ${run.startGtid}): ${errorMessage(err)}`,
        );
      }
      first = false;
      out.runs++;
      out.bytes += size;
      opts.onBytes?.(out.bytes);
    } finally {
      rmSync(runDir, { recursive: true, force: true });
    }
  }
  return out;
}
