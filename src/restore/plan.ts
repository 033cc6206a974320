// `restore-plan <backup-id> --to-point <name>` (issue 12 item 3): per shard, the backup to restore,
// the position it was taken at (from the manifest its agent published), and the binlog range to
// replay from there up to the point's GTID, checked against the binlogs each shard master still has.
// With `[repository]`, each backup is looked for there (its manifest object) instead of on a host.
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
}

export interface PlanResult {
  /** Printed with the rest by `restore-plan --format json`. */
  kind: 'plan';
  backupId: string;
  point?: RestorePoint;
  problems: string[];
  /** What could not be read (also among `problems`), each naming the instance and the server's error. */
  unread: string[];
  shards: ShardPlan[];
  afterReplay: string[];
}

/** Any spider node (away from the primary, the rows are read on the shard masters). */
export async function restorePlan(
  config: AgentConfig,
  session: ClusterSession,
  opts: { backupId: string; pointName: string; repo?: Repository | undefined },
): Promise<PlanResult> {
  const backupId = validateBackupId(opts.backupId, 'backup id');
  const pointName = validateBackupId(opts.pointName, '--to-point');
  const tables = await shardTablesOf(session, config.schedule.waitConcurrency);
  const listed = tables.servers;
  const [point, tasks] = await Promise.all([restorePointIn(tables, pointName), queryTasks(config, session, { backupId })]);
  const rows = tasks.tasks;
  const problems = [...pointProblems(point, pointName, rows), ...tasks.errors];
  if (rows.length === 0) problems.push(`no task of backup id ${backupId} found`);
  const unread = tasks.errors;
  if (!point || point.status !== 'taken') return { kind: 'plan', backupId, problems, unread, shards: [], afterReplay: AFTER_REPLAY };
  const servers = new Map(listed.map((s) => [`${s.host}:${s.port}`, s]));
  const shards = await Promise.all(
    chooseBackups(point, rows).map((choice) => planShard(choice, servers, session.connectOptions, opts.repo)),
  );
  return { kind: 'plan', backupId, point, problems, unread, shards, afterReplay: AFTER_REPLAY };
}

async function planShard(
  choice: ShardChoice,
  servers: Map<string, ServerRow>,
  opts: ConnectOptions,
  repo: Repository | undefined,
): Promise<ShardPlan> {
  const plan: ShardPlan = { ...choice };
  if (repo && choice.backup) await lookInRepository(plan, repo, choice.backup);
  const master = servers.get(`${choice.shard.host}:${choice.shard.port}`);
  if (!master || master.wrapper.toLowerCase() !== 'mysql') {
    plan.binlogError = `${choice.shard.serverName} ${choice.shard.host}:${choice.shard.port} is no longer a shard master in mysql.servers`;
    return plan;
  }
  try {
    await withConnection(
      endpointOf(master),
      async (c) => {
        if (choice.backup && choice.from) await readStart(plan, choice.backup, choice.from, servers, c, opts);
        // Without the backup's position, list from the oldest kept file: which are gone cannot be told.
        plan.binlogs = await binlogRangeOn(c, plan.backupGtid ?? '', choice.shard.gtid);
        if (plan.backupGtid === undefined) delete plan.binlogs.gone;
        if (plan.binlogs.gone) {
          const startFile = plan.start?.binlogFile;
          const named = startFile ? purgedFiles(startFile, plan.binlogs.gone.oldestKept) : [];
          if (named.length > 0) plan.purged = named;
        }
      },
      opts,
    );
  } catch (err) {
    plan.binlogError = errorMessage(err);
  }
  return plan;
}

/** The backup's position from the manifest its agent published on the instance that was backed up. */
async function readStart(
  plan: ShardPlan,
  backup: TaskRow,
  from: 'master' | 'replica',
  servers: Map<string, ServerRow>,
  master: Queryable,
  opts: ConnectOptions,
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
    const gtid = await binlogGtidPosAt(master, binlogFile, binlogPos);
    if (gtid !== '') plan.backupGtid = gtid;
    else
      plan.start.problem = `the master no longer has ${binlogFile}: the GTID position of ${binlogFile}:${binlogPos} cannot be told (purged)`;
  } else if (plan.start.gtid) plan.backupGtid = plan.start.gtid;
}

/** Whether the chosen backup is complete in the repository (its manifest object there). */
async function lookInRepository(plan: ShardPlan, repo: Repository, backup: TaskRow): Promise<void> {
  try {
    plan.repoKey = instanceKey(repo, backup.backupId, backup.host, backup.port);
    const there = await repo.store.stat(`${plan.repoKey}${MANIFEST_OBJECT}`);
    if (!there) plan.repoProblem = `its backup is not complete in the repository: ${repo.where}: ${plan.repoKey}${MANIFEST_OBJECT} missing`;
  } catch (err) {
    plan.repoProblem = `the repository cannot be read: ${errorMessage(err)}`;
  }
}
