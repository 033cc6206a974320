// `verify <backup-id> --restore-test --to-point <name>` (issue 12 item 4): every shard of the plan
// restored into a throw-away local instance from its backup, rolled forward with its master's
// binlogs from the backup's position to the point's GTID, then an optional check query on each.
// Nothing is restored when any shard's part of the plan cannot be carried out. With `[repository]`
// the files are fetched from it (decrypted, checked) into the scratch directory first, and the
// binlogs come from its archive as far as it reaches (each run replayed on its own), the master's
// only for the rest; without a cluster session, the plan is read from the repository alone.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentConfig } from '../config/agent.js';
import type { Endpoint } from '../db/connect.js';
import { errorMessage } from '../errors.js';
import { checkBackupDir, type Manifest } from '../runner/manifest.js';
import type { RestoredInstance } from './restore-files.js';
import { fetchBinlogs, replayBinlog, ReplayError } from './binlog-replay.js';
import { mapLimited } from '../cluster/reach.js';
import { preparedXids } from '../sql/restore-point.js';
import { checksumTable, userTables } from '../sql/source-info.js';
import { describeFiles } from './plan-model.js';
import { restorePlan, type PlanResult, type ShardPlan } from './plan.js';
import { endpointOf, type ClusterSession } from '../cluster/session.js';
import type { Repository } from '../repo/repository.js';
import { fetchRun } from '../archive/archive-store.js';
import { describeGap } from './archive-plan.js';
import { restorePlanFromRepository } from './repo-plan.js';
import { checkRepoInstance, fetchInstance } from './repo-files.js';

export interface ShardRestore {
  label: string;
  /** Whose backup was restored: the shard master's or its replica's (then from its master position). */
  backup: string;
  tool: string;
  /** The backup's GTID position the replay started after. */
  from: string;
  /** The point's GTID position the replay stopped at (inclusive). */
  to: string;
  /** Binlog files replayed. */
  files: string[];
  /** How many of them were read from the binlog archive (the rest from the master). */
  fromArchive: number;
  /** XA transactions left prepared on the restored shard (none at a point taken through Spider). */
  preparedXa: number;
  /** A dump's: XA transactions prepared at its position, prepared again before the replay. */
  carriedXa: number;
  /** XA transactions the restored copy already held prepared, whose PREPARE the replay then did not apply again. */
  skippedXa: number;
  /** First column of the first row of the check query, when one was given. */
  check?: string | null;
  /** With `checksums`: CHECKSUM TABLE of every user table (schema.table), by name. */
  checksums?: { table: string; checksum: string | null }[];
}

export type PointRestoreResult =
  | { kind: 'refused'; problems: string[]; plan: PlanResult }
  | { kind: 'restored'; point: string; shards: ShardRestore[]; checkSum?: number; ms: number; plan: PlanResult };

export interface PointRestoreOptions {
  /** Absent: the newest backup usable for the point. */
  backupId?: string | undefined;
  /** The point by name, or the newest at or before `toTime`. */
  pointName?: string | undefined;
  toTime?: string | undefined;
  /** No cluster session: why (the plan is then read from the repository alone). */
  unreachable?: string | undefined;
  /** Run on every restored shard after the replay (e.g. SELECT SUM(balance) FROM bank.acct). */
  checkSql?: string | undefined;
  /** CHECKSUM TABLE of every user table of each restored shard, for comparing with another restore of the point. */
  checksums?: boolean | undefined;
  /** Where the throw-away instances and fetched binlogs go (default: the system's tmpdir). */
  workRoot?: string | undefined;
  /** The configured repository: the backups are fetched from it instead of read on this host. */
  repo?: Repository | undefined;
}

const label = (p: ShardPlan) => `${p.shard.serverName} ${p.shard.host}:${p.shard.port} shard ${p.shard.shardValue}`;

/** What stops a shard from being restored to the point here, one line each; empty when it can be. */
export function restoreProblems(p: ShardPlan, fromRepository = false): string[] {
  const out: string[] = [];
  const who = label(p);
  if (p.problem) return [`${who}: ${p.problem}`];
  if (p.noManifest) out.push(`${who}: its backup has no published manifest (a built-in runner's backup is needed to restore it here)`);
  if (p.start?.problem) out.push(`${who}: ${p.start.problem}`);
  if (p.published && p.published.verdict !== 'ok')
    out.push(`${who}: the agent's own check of its backup said ${p.published.verdict}: ${p.published.verdictDetail}`);
  if (p.repoProblem) out.push(`${who}: ${p.repoProblem}`);
  if (!fromRepository && p.published && !existsSync(p.published.dir))
    out.push(`${who}: its backup files ${p.published.dir} are not on this host`);
  if (p.binlogError) out.push(`${who}: binlogs not readable: ${p.binlogError}`);
  if (p.gapBlocks && p.archiveGap)
    out.push(`${who}: the binlog archive has a hole the master does not fill either: ${describeGap(p.archiveGap)}`);
  else if (p.binlogs?.gone) {
    const files = p.purged ? describeFiles(p.purged) : `the binlogs before ${p.binlogs.gone.oldestKept}`;
    out.push(
      `${who}: the replay needs ${files}, purged from the master (oldest kept: ${p.binlogs.gone.oldestKept}); fetch them from the binlog archive`,
    );
  }
  if (p.binlogs?.notReached) out.push(`${who}: the master's binlog has not reached the point's ${p.shard.gtid}`);
  if (out.length === 0 && (!p.published || p.backupGtid === undefined || (!p.binlogs && p.replay === undefined)))
    out.push(`${who}: the backup's position is unknown`);
  return out;
}

/**
 * Any spider node (the plan reads the shard masters directly away from the primary); without a
 * session (`opts.unreachable` says why), from the repository alone.
 */
export async function restoreToPoint(
  config: AgentConfig,
  session: ClusterSession | undefined,
  opts: PointRestoreOptions,
): Promise<PointRestoreResult> {
  const t0 = Date.now();
  const repo = opts.repo;
  const req = { backupId: opts.backupId, pointName: opts.pointName, toTime: opts.toTime, repo };
  const plan =
    session || !repo
      ? await restorePlan(config, session as ClusterSession, req)
      : await restorePlanFromRepository(repo, req, opts.unreachable ?? 'the cluster cannot be reached');
  const problems = [...plan.problems, ...plan.shards.flatMap((p) => restoreProblems(p, repo !== undefined))];
  if (problems.length > 0 || !plan.point) return { kind: 'refused', problems, plan };
  // The binlogs are copied as a replica would, with mysql.servers' user (not part of the printed plan).
  const masters = new Map(session ? (await session.view()).servers.map((s) => [`${s.host}:${s.port}`, endpointOf(s)]) : []);

  // Every shard is checked first: one whose files changed since the backup is not restored.
  const fromRepo = new Map<ShardPlan, Manifest>();
  for (const p of plan.shards) {
    if (repo && p.backup) {
      const check = await checkRepoInstance(repo, p.backup.backupId, p.backup.host, p.backup.port, p.published!.manifestSha256);
      problems.push(...check.problems.map((x) => `${label(p)}: ${x}`));
      if (check.manifest) fromRepo.set(p, check.manifest.manifest);
    } else {
      const check = await checkBackupDir(p.published!.dir, p.published!.manifestSha256);
      problems.push(...check.problems.map((x) => `${label(p)}: ${x}`));
    }
  }
  if (problems.length > 0) return { kind: 'refused', problems, plan };

  const { restoreIntoThrowaway } = await import('./restore-files.js');
  const root = mkdtempSync(join(opts.workRoot ?? tmpdir(), 'sb-to-point-'));
  const restored: RestoredInstance[] = [];
  try {
    // Two at a time: each is a mariadbd and a load or a prepare.
    const restoreShard = async (p: ShardPlan): Promise<ShardRestore> => {
      const published = p.published!;
      const manifest = fromRepo.get(p) ?? (JSON.parse(published.manifest) as Manifest);
      let dir = published.dir;
      if (repo && p.backup) {
        dir = mkdtempSync(join(root, 'fetched-'));
        await fetchInstance(repo, p.backup.backupId, p.backup.host, p.backup.port, manifest, dir);
      }
      const instance = await restoreIntoThrowaway(dir, manifest, root);
      if (dir !== published.dir) rmSync(dir, { recursive: true, force: true });
      restored.push(instance);
      const from = p.backupGtid as string;
      const files: string[] = [];
      let carriedXa = 0;
      let skippedXa = 0;
      // The XA carry re-prepares what a dump's copy lacks; an XA the copy already holds prepared after
      // its recorded position is not prepared again: both only in the first replay after the copy.
      let first = true;
      const alreadyPrepared = await preparedXids(instance.db);
      const replay = async (local: string[], startGtid: string) => {
        try {
          const r = await replayBinlog({
            files: local,
            startGtid,
            stopGtid: p.shard.gtid,
            target: { socket: instance.socket },
            carryPreparedXa: first && manifest.tool.name === 'mariadb-dump',
            alreadyPrepared: first ? alreadyPrepared : [],
          });
          carriedXa += r.carriedXa;
          skippedXa += r.skippedXa;
          first = false;
        } catch (err) {
          throw new ReplayError(`${label(p)}: ${errorMessage(err)}`);
        }
      };
      for (const run of p.archiveRuns ?? []) {
        const local = await fetchRun(repo as Repository, run, mkdtempSync(join(root, 'archive-')));
        await replay([local], run.startGtid);
        files.push(run.file.file);
      }
      const fromArchive = files.length;
      const masterFiles = p.binlogs?.files ?? [];
      if (masterFiles.length > 0) {
        const master = masters.get(`${p.shard.host}:${p.shard.port}`) as Endpoint;
        const local = await fetchBinlogs(master, masterFiles, mkdtempSync(join(root, 'binlogs-')));
        await replay(local, p.masterFrom ?? from);
        files.push(...masterFiles);
      }
      const xa = (await instance.db.query('XA RECOVER')) as unknown[];
      const backup = `${p.from === 'replica' ? "replica's" : "master's"} ${published.tool} backup (${p.backup?.serverName} ${published.host}:${published.port})`;
      const out: ShardRestore = {
        label: label(p),
        backup,
        tool: manifest.tool.name,
        from,
        to: p.shard.gtid,
        files,
        fromArchive,
        preparedXa: xa.length,
        carriedXa,
        skippedXa,
      };
      if (opts.checkSql !== undefined) out.check = await firstValue(instance, opts.checkSql, label(p));
      if (opts.checksums) {
        out.checksums = [];
        for (const t of await userTables(instance.db))
          out.checksums.push({ table: `${t.schema}.${t.table}`, checksum: await checksumTable(instance.db, t) });
      }
      return out;
    };
    // Each shard runs to its end even when another fails, so every instance started is closed below.
    const outcomes = await mapLimited(plan.shards, 2, async (p): Promise<ShardRestore | { error: unknown }> => {
      try {
        return await restoreShard(p);
      } catch (error) {
        return { error };
      }
    });
    const failed = outcomes.find((o): o is { error: unknown } => 'error' in o);
    if (failed) throw failed.error;
    const shards = outcomes as ShardRestore[];
    const res: PointRestoreResult = { kind: 'restored', point: plan.point.name, shards, ms: 0, plan };
    const values = shards.map((s) => s.check);
    if (opts.checkSql !== undefined && values.every((v) => v !== null && v !== undefined && Number.isFinite(Number(v))))
      res.checkSum = values.reduce((n, v) => n + Number(v), 0);
    res.ms = Date.now() - t0;
    return res;
  } finally {
    await Promise.all(restored.map((r) => r.close().catch(() => undefined)));
    rmSync(root, { recursive: true, force: true });
  }
}

async function firstValue(instance: RestoredInstance, sql: string, who: string): Promise<string | null> {
  const { OperationError } = await import('../errors.js');
  let rows: unknown;
  try {
    rows = await instance.db.query(sql);
  } catch (err) {
    throw new OperationError(`--check-sql on the restored ${who}: ${errorMessage(err)}`);
  }
  const first = Array.isArray(rows) ? (rows[0] as Record<string, unknown> | undefined) : undefined;
  if (!first) return null;
  const v = Object.values(first)[0];
  return v === null || v === undefined ? null : String(v);
}
