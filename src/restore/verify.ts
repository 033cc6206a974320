// `verify <backup-id>` (README "Verifying a backup"): every task of the backup id `success`, every
// instance's manifest published with the agent's verdict `ok`, and, where the files are reachable
// from here, the files re-checked against the published manifest digest. Optionally a restore test
// of one shard into a throw-away local instance, compared by CHECKSUM TABLE with its source. With a
// repository, the holes in each shard's binlog archive after the backup are named.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, normalize } from 'node:path';
import type { AgentConfig } from '../config/agent.js';
import { withConnection, type ConnectOptions, type Endpoint } from '../db/connect.js';
import { errorMessage } from '../errors.js';
import { checkBackupDir, lookAt, type Manifest } from '../runner/manifest.js';
import { readVerdict, type ManifestVerdict } from '../sql/manifests.js';
import { isValidBackupId, validateBackupId } from '../task/backup-id.js';
import { mapLimited } from '../cluster/reach.js';
import { queryTasks } from '../cluster/query.js';
import { restorePointIn } from '../cluster/restore-point.js';
import { shardTablesOf } from '../cluster/shard-tables.js';
import type { RestorePoint } from '../cluster/restore-point-model.js';
import { endpointOf, type ClusterSession } from '../cluster/session.js';
import { STATUS } from '../task/status.js';
import type { TaskRow } from '../task/task.js';
import type { Repository } from '../repo/repository.js';
import { checkRepoInstance, fetchInstance } from './repo-files.js';
import { archiveReach, replayRuns, type Gap } from '../archive/archive-index.js';
import { readShardArchive } from '../archive/archive-store.js';
import { covers, parseGtidPos } from '../archive/gtid.js';
import { describeGap } from './archive-plan.js';
import { manifestGtid } from './point-choice.js';

export interface InstanceVerdict {
  task: TaskRow;
  ok: boolean;
  /** What is wrong, one item each; empty when ok. */
  problems: string[];
  /** What was checked, for the ok line. */
  notes: string[];
  published: ManifestVerdict | undefined;
  /** The files were found on this host (or in the repository) and re-checked. */
  rechecked: boolean;
  /** Not failures (the key id of an encrypted backup unknown to this host). */
  warnings: string[];
  /** With a repository: the instance's manifest there (what a restore test uses). */
  repoManifest?: Manifest;
}

export type VerifyResult =
  | { kind: 'none'; backupId: string }
  | {
      kind: 'verified';
      backupId: string;
      instances: InstanceVerdict[];
      errors: string[];
      /** Instances whose tasks could not be read (named in `errors`): not verified. */
      unread: string[];
      endpoints: Map<string, Endpoint>;
      /** The backup's restore point (named after its id); undefined when none was recorded. */
      restorePoint: RestorePoint | undefined;
    };

/**
 * Any spider node (away from the primary, the task rows are read on the shard masters). With
 * `repo`, the files are checked there, not on this host.
 */
export async function verifyBackup(
  config: AgentConfig,
  session: ClusterSession,
  opts: { backupId: string; repo?: Repository | undefined },
): Promise<VerifyResult> {
  const backupId = validateBackupId(opts.backupId, 'backup id');
  const [tables, res] = await Promise.all([
    shardTablesOf(session, config.schedule.waitConcurrency),
    queryTasks(config, session, { backupId }),
  ]);
  const servers = tables.servers;
  if (res.tasks.length === 0) return { kind: 'none', backupId };
  const endpoints = new Map<string, Endpoint>();
  for (const s of servers) endpoints.set(`${s.host}:${s.port}`, endpointOf(s));
  endpoints.set(`${session.spider.host}:${session.spider.port}`, session.spider);
  const tasks = [...res.tasks].sort((a, b) => order(a) - order(b) || a.shardValue - b.shardValue || a.port - b.port);
  const [instances, restorePoint] = await Promise.all([
    mapLimited(tasks, config.schedule.waitConcurrency, (t) =>
      verifyInstance(t, endpoints.get(`${t.host}:${t.port}`), session.connectOptions, opts.repo),
    ),
    restorePointIn(tables, backupId).catch((err: unknown) => {
      res.errors.push(`${tables.notPrimary ? '' : `spider ${session.spiderName}: `}restore point: ${errorMessage(err)}`);
      return undefined;
    }),
  ]);
  return { kind: 'verified', backupId, instances, errors: res.errors, unread: res.unread, endpoints, restorePoint };
}

const order = (t: TaskRow) => (t.wrapper.toUpperCase() === 'SPIDER' ? 0 : t.wrapper.toLowerCase() === 'mysql' ? 1 : 2);

async function verifyInstance(
  task: TaskRow,
  ep: Endpoint | undefined,
  opts: ConnectOptions,
  repo: Repository | undefined,
): Promise<InstanceVerdict> {
  const v: InstanceVerdict = { task, ok: false, problems: [], notes: [], published: undefined, rechecked: false, warnings: [] };
  if (task.status !== STATUS.success) v.problems.push(`task status is ${JSON.stringify(task.status)}, not success`);
  if (!ep) {
    v.problems.push('not in tdbctl mysql.servers: cannot read its manifest');
    return v;
  }
  try {
    v.published = await withConnection(ep, (c) => readVerdict(c, task.backupId, task.host, task.port), opts);
  } catch (err) {
    v.problems.push(`cannot read its manifest row: ${errorMessage(err)}`);
    return v;
  }
  const p = v.published;
  if (!p) {
    v.problems.push('no manifest published (not a built-in runner, or the backup did not complete)');
    return v;
  }
  if (p.verdict !== 'ok') v.problems.push(`the agent's own check said ${p.verdict}: ${p.verdictDetail}`);
  else v.notes.push(`agent's check ok`);
  if (repo) {
    const check = await checkRepoInstance(repo, task.backupId, task.host, task.port, p.manifestSha256);
    v.rechecked = true;
    if (check.ok) v.notes.push(`${check.checked} object(s) re-checked in the repository`);
    if (check.manifest) v.repoManifest = check.manifest.manifest;
    v.problems.push(...check.problems);
    v.warnings.push(...check.warnings);
    v.ok = v.problems.length === 0;
    return v;
  }
  // The published directory comes from a row: only <BackupDir>/<backup id>/<host>_<port>, as the
  // runner writes it, is looked at; anything else is a failure, never a stat.
  const outside = outsideBackupDir(p.dir, task);
  if (outside !== undefined) {
    v.problems.push(outside);
  } else {
    // "Not here" only when it is not: a directory this user cannot read is a failure that says so.
    const at = lookAt(p.dir);
    if (at.kind === 'missing') {
      v.notes.push('files not on this host');
    } else if (at.kind === 'unreadable') {
      v.problems.push(at.problem);
    } else {
      const check = await checkBackupDir(p.dir, p.manifestSha256);
      v.rechecked = true;
      if (check.ok) v.notes.push(`${check.manifest?.files.length ?? 0} file(s) re-checked here`);
      v.problems.push(...check.problems);
    }
  }
  v.ok = v.problems.length === 0;
  return v;
}

/** Why a published directory is not this task's backup directory, or undefined when it is. */
export function outsideBackupDir(dir: string, task: TaskRow): string | undefined {
  const own = `${task.backupId}/${task.host}_${task.port}`;
  const norm = isAbsolute(dir) ? normalize(dir) : '';
  if (norm === dir && dir.endsWith(`/${own}`) && isValidBackupId(basename(dirname(dir)))) return undefined;
  return `published directory ${JSON.stringify(dir)} is not <BackupDir>/${own}; not read`;
}

export const labelOf = (t: TaskRow): string => `${t.serverName} ${t.host}:${t.port} shard ${t.shardValue}`;

export interface RestoreTestResult {
  task: TaskRow;
  tool: string;
  tables: number;
  differences: string[];
}

/**
 * Restores the backup of one shard master whose files are on this host (`shard`, or the first such
 * one) and compares CHECKSUM TABLE of every user table with its source. The source must be quiet
 * for the comparison to mean anything (README "Verifying a backup").
 */
export async function restoreTest(
  verified: Extract<VerifyResult, { kind: 'verified' }>,
  shard: number | undefined,
  repo?: Repository,
): Promise<RestoreTestResult> {
  const { OperationError } = await import('../errors.js');
  const candidates = verified.instances.filter(
    (i) =>
      i.task.wrapper.toLowerCase() === 'mysql' &&
      i.published &&
      (repo ? i.repoManifest !== undefined : outsideBackupDir(i.published.dir, i.task) === undefined && existsSync(i.published.dir)) &&
      (shard === undefined || i.task.shardValue === shard),
  );
  const chosen = candidates[0];
  if (!chosen?.published) {
    const where = repo ? `in the repository (${repo.where})` : 'on this host';
    throw new OperationError(
      `--restore-test: no shard master${shard === undefined ? '' : ` of shard ${shard}`} of ${verified.backupId} has its backup files ${where}`,
    );
  }
  if (!chosen.ok) throw new OperationError(`--restore-test: ${labelOf(chosen.task)} did not verify; not restored`);
  const manifest = chosen.repoManifest ?? (JSON.parse(chosen.published.manifest) as Manifest);
  const source = verified.endpoints.get(`${chosen.task.host}:${chosen.task.port}`) as Endpoint;
  const { restoreIntoThrowaway, compareChecksums } = await import('./restore-files.js');
  // From the repository: the files fetched (decrypted, checked) into a scratch directory first.
  const scratch = repo ? mkdtempSync(join(tmpdir(), 'sb-fetch-')) : undefined;
  let restored: Awaited<ReturnType<typeof restoreIntoThrowaway>>;
  try {
    if (repo && scratch) await fetchInstance(repo, verified.backupId, chosen.task.host, chosen.task.port, manifest, scratch);
    restored = await restoreIntoThrowaway(scratch ?? chosen.published.dir, manifest);
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
  try {
    const cmp = await withConnection(source, (c) => compareChecksums(c, restored.db));
    return { task: chosen.task, tool: manifest.tool.name, tables: cmp.tables.length, differences: cmp.differences };
  } finally {
    await restored.close();
  }
}

/** What the binlog archive of one shard holds from a backup's position on (`verify` with a repository). */
export interface ShardArchiveReport {
  shard: number;
  /** The backup's position the report starts from. */
  from: string;
  /** The newest state the archive reaches ('' when it holds nothing of the shard). */
  newest: string;
  files: number;
  /** Holes after the backup's position, oldest first. */
  gaps: Gap[];
  problems: string[];
}

/**
 * Per shard of the backup (its master's instance, else its replica's), the holes in the archive
 * between the backup's position and the newest archived event: a point past one cannot be reached
 * from the archive alone.
 */
export async function archiveReports(repo: Repository, instances: readonly InstanceVerdict[]): Promise<ShardArchiveReport[]> {
  const byShard = new Map<number, { from: string }>();
  for (const i of [...instances].sort((a, b) => order(a.task) - order(b.task))) {
    const m = i.repoManifest;
    const gtid = m ? manifestGtid(m) : undefined;
    if (!m || gtid === undefined || (m.role !== 'master' && m.role !== 'slave') || byShard.has(m.shardValue)) continue;
    byShard.set(m.shardValue, { from: gtid });
  }
  const out: ShardArchiveReport[] = [];
  for (const [shard, { from }] of [...byShard.entries()].sort((a, b) => a[0] - b[0])) {
    const report: ShardArchiveReport = { shard, from, newest: '', files: 0, gaps: [], problems: [] };
    out.push(report);
    try {
      const view = await readShardArchive(repo, shard);
      report.problems.push(...view.problems);
      report.files = view.files.length;
      const reach = archiveReach(view.files);
      report.newest = reach.newest;
      if (view.files.length === 0) continue;
      const start = parseGtidPos(from);
      const after = (g: Gap) => !covers(start, parseGtidPos(g.before));
      // From the backup's own position first (the archive may begin after it), then every later hole.
      const first = replayRuns(view.files, from, reach.newest);
      const gaps = 'gap' in first ? [first.gap] : [];
      for (const g of reach.gaps.filter(after)) if (!gaps.some((x) => x.after === g.after && x.before === g.before)) gaps.push(g);
      report.gaps = gaps;
    } catch (err) {
      report.problems.push(`the binlog archive of shard ${shard} cannot be read: ${errorMessage(err)}`);
    }
  }
  return out;
}

/** One line per shard, and one per hole, for `verify`. */
export function archiveLines(reports: readonly ShardArchiveReport[]): string[] {
  const out: string[] = [];
  for (const r of reports) {
    if (r.files === 0 && r.problems.length === 0) out.push(`binlog archive of shard ${r.shard}: empty`);
    else if (r.gaps.length === 0 && r.files > 0)
      out.push(`binlog archive of shard ${r.shard}: no hole from the backup's position ${r.from} to ${r.newest} (${r.files} file(s))`);
    for (const g of r.gaps) out.push(`binlog archive of shard ${r.shard}: ${describeGap(g)}`);
    for (const p of r.problems) out.push(`binlog archive of shard ${r.shard}: warning: ${p}`);
  }
  return out;
}
