// The source side of a whole-cluster restore (issue 20): restore-plan's plan (the cluster's when it
// answers, else the repository's alone), what stops a shard's backup from being restored by the
// agents, the binlog archive's runs to the point (the only binlogs the targets' agents can read:
// waited for, bounded, when the archiver is behind) and the source spider node's backup.
import { setTimeout as sleep } from 'node:timers/promises';
import { readShardArchive } from '../archive/archive-store.js';
import { openClusterSession } from '../cluster/session.js';
import type { AgentConfig } from '../config/agent.js';
import { unreachableOf } from '../db/reachability.js';
import { errorMessage, isUserFacing } from '../errors.js';
import { formatDuration } from '../format.js';
import type { Repository } from '../repo/repository.js';
import { describeGap, splitReplay } from '../restore/archive-plan.js';
import { restorePlan, type PlanRequest, type PlanResult, type ShardPlan } from '../restore/plan.js';
import { readRepoManifest, repoBackups } from '../restore/repo-files.js';
import { restorePlanFromRepository } from '../restore/repo-plan.js';
import type { RestoreEvent } from './job.js';
import type { ShardSource, SpiderSource } from './plan-tasks.js';

/** How often the wait for the archive says where it is. */
const ARCHIVE_NOTE_MS = 10_000;

/** restore-plan's choice: the cluster's plan when the source answers, else the repository's alone. */
export async function makePlan(config: AgentConfig, repo: Repository, req: PlanRequest): Promise<PlanResult> {
  let session;
  try {
    session = openClusterSession(config, undefined);
  } catch (err) {
    if (!isUserFacing(err)) throw err;
    return restorePlanFromRepository(repo, req, `no source spider node is configured on this host (${errorMessage(err)})`);
  }
  try {
    return await restorePlan(config, session, req);
  } catch (err) {
    if (unreachableOf(err)?.kind !== 'unreachable') throw err;
    return restorePlanFromRepository(repo, req, `the cluster cannot be reached (${errorMessage(err)})`);
  } finally {
    await session.close();
  }
}

export const shardLabel = (p: ShardPlan) => `shard ${p.shard.shardValue} (${p.shard.serverName} ${p.shard.host}:${p.shard.port})`;

/** What stops a shard's backup from being restored by the agents, one line each (the binlogs: archiveCover). */
export function shardProblems(p: ShardPlan): string[] {
  const who = shardLabel(p);
  if (p.problem) return [`${who}: ${p.problem}`];
  const out: string[] = [];
  if (p.noManifest) out.push(`${who}: its backup has no published manifest (only a built-in runner's backup can be restored)`);
  if (p.repoProblem) out.push(`${who}: ${p.repoProblem}`);
  if (p.start?.problem) out.push(`${who}: ${p.start.problem}`);
  if (p.published && p.published.verdict !== 'ok')
    out.push(`${who}: the agent's own check of its backup said ${p.published.verdict}: ${p.published.verdictDetail}`);
  if (out.length === 0 && (!p.published || !p.backup || p.backupGtid === undefined)) out.push(`${who}: the backup's position is unknown`);
  return out;
}

/** The archive's runs from the backup's position to the point, or what it lacks. */
async function archiveCover(repo: Repository, p: ShardPlan): Promise<{ runs: ShardSource['runs'] } | { missing: string }> {
  const view = await readShardArchive(repo, p.shard.shardValue);
  const split = splitReplay(view.files, p.backupGtid as string, p.shard.gtid);
  if (split.restFrom === undefined) return { runs: split.runs };
  const why = split.gap ? describeGap(split.gap) : 'the archive holds nothing of this shard';
  return {
    missing: `${shardLabel(p)}: the binlog archive lacks the events after ${split.restFrom || '(start)'} up to the point's ${p.shard.gtid} (${why}); the restore replays from the archive only`,
  };
}

/** Waits (bounded: 2 × [archive] max_lag) for the archiver to cover every shard's point; a dry run only looks. */
export async function waitForArchive(
  config: AgentConfig,
  repo: Repository,
  shards: ShardPlan[],
  dryRun: boolean,
  emit: (e: RestoreEvent) => void,
  signal: AbortSignal | undefined,
): Promise<{ runs: Map<ShardPlan, ShardSource['runs']>; problems: string[] }> {
  const runs = new Map<ShardPlan, ShardSource['runs']>();
  const limitMs = 2 * config.archive.maxLagMs;
  const t0 = Date.now();
  let noted = 0;
  let todo = shards;
  for (;;) {
    const missing: { p: ShardPlan; line: string }[] = [];
    for (const p of todo) {
      const c = await archiveCover(repo, p);
      if ('runs' in c) runs.set(p, c.runs);
      else missing.push({ p, line: c.missing });
    }
    const waited = Date.now() - t0;
    if (missing.length === 0 || dryRun || waited >= limitMs || signal?.aborted)
      return {
        runs,
        problems: missing.map((m) =>
          dryRun
            ? `${m.line} (a restore would wait up to ${formatDuration(limitMs)} for the archiver)`
            : `${m.line}; waited ${formatDuration(waited)}`,
        ),
      };
    if (noted === 0 || Date.now() - noted >= ARCHIVE_NOTE_MS) {
      noted = Date.now();
      emit({
        kind: 'note',
        line: `waiting for the binlog archive to reach the point on shard(s) ${missing.map((m) => m.p.shard.shardValue).join(', ')} (${formatDuration(waited)} of at most ${formatDuration(limitMs)}, 2 × [archive] max_lag)`,
      });
    }
    todo = missing.map((m) => m.p);
    await sleep(Math.min(2_000, limitMs - waited), undefined, { signal }).catch(() => undefined);
  }
}

/** The source spider node's backup of the same backup id (its Spider table definitions). */
export async function spiderSourceOf(repo: Repository, backupId: string): Promise<SpiderSource | string> {
  const backup = (await repoBackups(repo)).find((b) => b.backupId === backupId);
  const inst = backup?.instances
    .filter((i) => i.manifest?.role.startsWith('spider'))
    .sort((a, b) => a.host.localeCompare(b.host) || a.port - b.port)[0];
  if (!inst?.manifest)
    return `backup ${backupId} holds no spider node's backup in the repository (${repo.where}): the new spider nodes cannot get the Spider table definitions`;
  const m = await readRepoManifest(repo, backupId, inst.host, inst.port);
  if (!m) return `backup ${backupId}: the spider node ${inst.host}:${inst.port}'s manifest is gone from the repository`;
  return {
    source: {
      host: inst.host,
      port: inst.port,
      backupId,
      serverName: 'SPIDER',
      tool: m.manifest.tool.name,
      manifestSha256: m.sha256,
    },
    bytes: m.manifest.bytes,
  };
}
