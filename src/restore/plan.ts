// `restore-plan <backup-id> --to-point <name>` (issue 12 item 3): per shard, the backup to restore,
// the position it was taken at (from the manifest its agent published), and the binlog range to
// replay from there up to the point's GTID, checked against the binlogs each shard master still has.
// With `[repository]`, each backup is looked for there (its manifest object) instead of on a host,
// and the binlogs are read from its archive as far as it reaches, the master only for the rest
// (issue 19 item 4); when the cluster cannot be reached, the plan is made from the repository alone
// (restorePlanFromRepository). The point may be chosen by time, the backup by the point.
import type { AgentConfig } from '../config/agent.js';
import { withConnection, type ConnectOptions, type Queryable } from '../db/connect.js';
import { errorMessage } from '../errors.js';
import type { Manifest } from '../runner/manifest.js';
import { binlogGtidPosAt } from '../sql/binlogs.js';
import { readVerdict, type ManifestVerdict } from '../sql/manifests.js';
import type { ServerRow } from '../sql/servers.js';
import { validateBackupId } from '../task/backup-id.js';
import { binlogRangeOn } from './binlog-inventory.js';
import type { BinlogRange } from '../archive/gtid.js';
import { queryTasks } from '../cluster/query.js';
import { restorePointIn } from '../cluster/restore-point.js';
import { shardTablesOf } from '../cluster/shard-tables.js';
import type { RestorePoint } from '../cluster/restore-point-model.js';
import {
  AFTER_REPLAY,
  chooseBackups,
  pointProblems,
  purgedFiles,
  startPositionOf,
  type ShardChoice,
  type StartPosition,
} from './plan-model.js';
import { endpointOf, type ClusterSession } from '../cluster/session.js';
import type { TaskRow } from '../task/task.js';
import { instanceKey, MANIFEST_OBJECT, type Repository } from '../repo/repository.js';
import type { Gap, ReplayRun } from '../archive/archive-index.js';
import { readShardArchive, type ArchiveView } from '../archive/archive-store.js';
import { listRestorePoints } from '../cluster/restore-point.js';
import { archiveFiles, splitReplay, type ReplayFile } from './archive-plan.js';
import { gtidInArchive } from './archive-read.js';
import { candidatesFromTasks, choosePointAt, clockMicros, newestUsableBackup, type PointAtTime } from './point-choice.js';
import { mergePoints, readRepoPoint, readRepoPoints } from './repo-points.js';
import { repoBackups } from './repo-files.js';

export interface ShardPlan extends ShardChoice {
  /** The chosen backup's manifest row, as its agent published it on the instance. */
  published?: ManifestVerdict;
  /** Where the replay starts: the backup's position (for a replica's backup: its master's). */
  start?: StartPosition;
  /** The backup's own GTID position, when its manifest gives one (or the master maps its file/offset to one). */
  backupGtid?: string;
  /** No manifest published: not a built-in runner's backup; the position must be read from the backup itself. */
  noManifest?: boolean;
  binlogs?: BinlogRange;
  /** The binlog files the replay needs that the master no longer has, by name. */
  purged?: string[];
  binlogError?: string;
  /** With a repository: where the chosen backup's objects are (`<prefix>/backups/<id>/<host>_<port>/`). */
  repoKey?: string;
  /** With a repository: why its objects cannot be restored from there (no manifest object). */
  repoProblem?: string;
  /** Every binlog file the replay reads, in order: the archive's runs, then the master's files. */
  replay?: ReplayFile[];
  /** The archive's runs to fetch and replay (not printed: `replay` describes them). */
  archiveRuns?: ReplayRun[];
  /** The archive does not hold what follows this state: the master's files replay from here. */
  masterFrom?: string;
  /** Where the archive stops short of the point: a hole, or its end. */
  archiveGap?: Gap;
  /** The master does not hold what the archive lacks either: the plan crosses the gap. */
  gapBlocks?: boolean;
  /** Archive index documents that could not be read. */
  archiveProblems?: string[];
}

export interface PlanResult {
  /** Printed with the rest by `restore-plan --format json`. */
  kind: 'plan';
  backupId: string;
  /** No backup id was given: the newest backup usable for the point was chosen. */
  backupChosen?: boolean;
  point?: RestorePoint;
  /** `--to-time`: the time asked for, and how far before it the chosen point was taken. */
  requestedTime?: string;
  pointBeforeMs?: number;
  /** Read from the repository alone: why (the cluster cannot be reached). */
  fromRepository?: string;
  problems: string[];
  /** What could not be read (also among `problems`), each naming the instance and the server's error. */
  unread: string[];
  shards: ShardPlan[];
  afterReplay: string[];
}

/** What a plan is asked for: a point by name or by time; a backup id, or the newest usable one. */
export interface PlanRequest {
  backupId?: string | undefined;
  pointName?: string | undefined;
  toTime?: string | undefined;
  repo?: Repository | undefined;
}

export interface PointFound {
  point: RestorePoint | undefined;
  name: string;
  at?: PointAtTime;
}

/** The point by name (the cluster's, else the repository's) or the newest at or before the time. */
export async function findPoint(
  req: PlanRequest,
  cluster: { byName: (name: string) => Promise<RestorePoint | undefined>; all: () => Promise<RestorePoint[]> } | undefined,
): Promise<PointFound> {
  if (req.pointName !== undefined) {
    const name = validateBackupId(req.pointName, '--to-point');
    let point = cluster ? await cluster.byName(name) : undefined;
    if (!point && req.repo) point = await readRepoPoint(req.repo, name);
    return { point, name };
  }
  const time = req.toTime ?? '';
  clockMicros(time); // a time that does not parse is refused before anything is read
  const inRepo = req.repo ? (await readRepoPoints(req.repo)).points : [];
  const at = choosePointAt(mergePoints(cluster ? await cluster.all() : [], inRepo), time);
  return { point: at.point, name: at.point.name, at };
}

export function planHead(req: PlanRequest, found: PointFound, backupId: string): PlanResult {
  const res: PlanResult = { kind: 'plan', backupId, problems: [], unread: [], shards: [], afterReplay: AFTER_REPLAY };
  if (req.backupId === undefined) res.backupChosen = true;
  if (found.at) {
    res.requestedTime = req.toTime;
    res.pointBeforeMs = found.at.beforeMs;
  }
  return res;
}

export const NO_BACKUP = "no backup in which every shard of the point has a usable backup (master's or replica's) that ended before it";

/** Any spider node (away from the primary, the rows are read on the shard masters). */
export async function restorePlan(config: AgentConfig, session: ClusterSession, req: PlanRequest): Promise<PlanResult> {
  if (req.backupId !== undefined) validateBackupId(req.backupId, 'backup id');
  const tables = await shardTablesOf(session, config.schedule.waitConcurrency);
  const listed = tables.servers;
  const found = await findPoint(req, {
    byName: (name) => restorePointIn(tables, name),
    all: () => listRestorePoints(session, config.schedule.waitConcurrency),
  });
  const { point, name } = found;
  const tasks = await queryTasks(config, session, req.backupId !== undefined ? { backupId: req.backupId } : {});
  let backupId = req.backupId;
  if (backupId === undefined && point && point.status === 'taken') {
    const inRepo = req.repo ? await repoIndex(req.repo) : undefined;
    backupId = newestUsableBackup(
      point,
      candidatesFromTasks(point, tasks.tasks, inRepo && ((t) => inRepo.has(`${t.backupId}/${t.host}_${t.port}`))),
    );
  }
  const res = planHead(req, found, backupId ?? '');
  const rows = tasks.tasks.filter((t) => t.backupId === backupId);
  res.problems.push(...pointProblems(point, name, rows), ...tasks.errors);
  res.unread.push(...tasks.errors);
  if (backupId === undefined) {
    if (point && point.status === 'taken') res.problems.push(NO_BACKUP);
  } else if (rows.length === 0) res.problems.push(`no task of backup id ${backupId} found`);
  if (!point || point.status !== 'taken') return res;
  res.point = point;
  if (backupId === undefined) return res;
  const servers = new Map(listed.map((s) => [`${s.host}:${s.port}`, s]));
  const archives = new Map<number, Promise<ArchiveView>>();
  const archiveOf = (shard: number) => {
    if (!req.repo) return undefined;
    const repo = req.repo;
    if (!archives.has(shard)) {
      const read = readShardArchive(repo, shard);
      read.catch(() => undefined); // awaited (and its error named) by the shard's plan, a moment later
      archives.set(shard, read);
    }
    return archives.get(shard);
  };
  res.shards = await Promise.all(
    chooseBackups(point, rows).map((choice) =>
      planShard(choice, servers, session.connectOptions, req.repo, archiveOf(choice.shard.shardValue)),
    ),
  );
  return res;
}

/** `<id>/<host>_<port>` of every instance whose manifest the repository holds. */
async function repoIndex(repo: Repository): Promise<Set<string>> {
  const out = new Set<string>();
  for (const b of await repoBackups(repo)) for (const i of b.instances) if (i.manifest) out.add(`${b.backupId}/${i.name}`);
  return out;
}

async function planShard(
  choice: ShardChoice,
  servers: Map<string, ServerRow>,
  opts: ConnectOptions,
  repo: Repository | undefined,
  archive: Promise<ArchiveView> | undefined,
): Promise<ShardPlan> {
  const plan: ShardPlan = { ...choice };
  if (repo && choice.backup) await lookInRepository(plan, repo, choice.backup);
  const view = await readArchive(plan, archive);
  const master = servers.get(`${choice.shard.host}:${choice.shard.port}`);
  if (!master || master.wrapper.toLowerCase() !== 'mysql') {
    plan.binlogError = `${choice.shard.serverName} ${choice.shard.host}:${choice.shard.port} is no longer a shard master in mysql.servers`;
    return plan;
  }
  try {
    await withConnection(
      endpointOf(master),
      async (c) => {
        if (choice.backup && choice.from) await readStart(plan, choice.backup, choice.from, servers, c, opts, repo, view);
        await coverBinlogs(plan, view, (from) => binlogRangeOn(c, from, choice.shard.gtid));
      },
      opts,
    );
  } catch (err) {
    plan.binlogError = errorMessage(err);
  }
  return plan;
}

export async function readArchive(plan: ShardPlan, archive: Promise<ArchiveView> | undefined): Promise<ArchiveView | undefined> {
  if (!archive) return undefined;
  try {
    const view = await archive;
    if (view.problems.length > 0) plan.archiveProblems = view.problems;
    return view;
  } catch (err) {
    plan.archiveProblems = [`the binlog archive of shard ${plan.shard.shardValue} cannot be read: ${errorMessage(err)}`];
    return undefined;
  }
}

/**
 * The binlogs of the replay: the archive's runs as far as it reaches, the master's files for the
 * rest (`master` lists them from a state; a string says why the master cannot be asked).
 */
export async function coverBinlogs(
  plan: ShardPlan,
  view: ArchiveView | undefined,
  master: ((from: string) => Promise<BinlogRange>) | string,
) {
  const from = plan.backupGtid;
  if (from === undefined) {
    // Without the backup's position, list from the oldest kept file: which are gone cannot be told.
    if (typeof master === 'string') return;
    plan.binlogs = await master('');
    delete plan.binlogs.gone;
    return;
  }
  let rest: string | undefined = from;
  if (view) {
    const split = splitReplay(view.files, from, plan.shard.gtid);
    plan.archiveRuns = split.runs;
    plan.replay = archiveFiles(split.runs);
    rest = split.restFrom;
    if (split.gap) plan.archiveGap = split.gap;
  }
  if (rest === undefined) return;
  plan.masterFrom = rest;
  if (typeof master === 'string') {
    plan.binlogError = master;
    if (plan.archiveGap) plan.gapBlocks = true;
    return;
  }
  plan.binlogs = await master(rest);
  const fromMaster = rest;
  plan.replay = [
    ...(plan.replay ?? []),
    ...plan.binlogs.files.map((file): ReplayFile => ({
      source: 'master',
      file,
      host: plan.shard.host,
      port: plan.shard.port,
      startGtid: fromMaster,
    })),
  ];
  if (plan.binlogs.gone) {
    if (plan.archiveGap) plan.gapBlocks = true;
    const startFile = plan.start?.binlogFile;
    const named = startFile && rest === from ? purgedFiles(startFile, plan.binlogs.gone.oldestKept) : [];
    if (named.length > 0) plan.purged = named;
  }
}

/** The backup's position from the manifest its agent published on the instance that was backed up. */
async function readStart(
  plan: ShardPlan,
  backup: TaskRow,
  from: 'master' | 'replica',
  servers: Map<string, ServerRow>,
  master: Queryable,
  opts: ConnectOptions,
  repo: Repository | undefined,
  view: ArchiveView | undefined,
) {
  const server = servers.get(`${backup.host}:${backup.port}`);
  if (!server) {
    plan.start = { problem: `${backup.serverName} ${backup.host}:${backup.port} is not in mysql.servers: its manifest cannot be read` };
    return;
  }
  let published: ManifestVerdict | undefined;
  try {
    published = await withConnection(endpointOf(server), (c) => readVerdict(c, backup.backupId, backup.host, backup.port), opts);
  } catch (err) {
    plan.start = { problem: `cannot read the manifest row of ${backup.serverName} ${backup.host}:${backup.port}: ${errorMessage(err)}` };
    return;
  }
  if (!published || published.manifest === '') {
    plan.noManifest = true;
    return;
  }
  plan.published = published;
  let manifest: Manifest;
  try {
    manifest = JSON.parse(published.manifest) as Manifest;
  } catch (err) {
    plan.start = { problem: `the manifest row of ${backup.serverName} is not JSON: ${errorMessage(err)}` };
    return;
  }
  plan.start = startPositionOf(manifest, from);
  const { binlogFile, binlogPos } = plan.start;
  // A dump's file/offset is its snapshot's (binlog_snapshot_file/pos); the GTID mariadb-dump prints
  // was read a moment later, with commits in between: the master maps the file/offset instead. So
  // does a file/offset alone (a replica under file-based replication), while the master keeps the file.
  const viaFile = binlogFile !== undefined && binlogPos !== undefined && (manifest.tool.name === 'mariadb-dump' || !plan.start.gtid);
  if (viaFile) {
    let gtid = await binlogGtidPosAt(master, binlogFile, binlogPos);
    // Purged from the master: the archive may still hold the file.
    if (gtid === '' && repo && view) gtid = (await gtidInArchive(repo, view.files, plan.shard, binlogFile, binlogPos)) ?? '';
    if (gtid !== '') plan.backupGtid = gtid;
    else
      plan.start.problem = `the master no longer has ${binlogFile}${repo ? ' nor the binlog archive' : ''}: the GTID position of ${binlogFile}:${binlogPos} cannot be told (purged)`;
  } else if (plan.start.gtid) plan.backupGtid = plan.start.gtid;
}

/** Whether the chosen backup is complete in the repository (its manifest object there). */
export async function lookInRepository(plan: ShardPlan, repo: Repository, backup: TaskRow): Promise<void> {
  try {
    plan.repoKey = instanceKey(repo, backup.backupId, backup.host, backup.port);
    const there = await repo.store.stat(`${plan.repoKey}${MANIFEST_OBJECT}`);
    if (!there) plan.repoProblem = `its backup is not complete in the repository: ${repo.where}: ${plan.repoKey}${MANIFEST_OBJECT} missing`;
  } catch (err) {
    plan.repoProblem = `the repository cannot be read: ${errorMessage(err)}`;
  }
}
