// `restore-plan` when the cluster cannot be reached (issue 19 item 4): the point, the backups'
// manifests and the binlog archive read from the repository alone. The shard list is the point's;
// "ended before the point" is told by positions (the point's GTID covers the backup's), there
// being no database clock to compare with. What the archive does not hold cannot be had.
import { errorMessage } from '../errors.js';
import { instanceKey, type Repository } from '../repo/repository.js';
import type { Manifest } from '../runner/manifest.js';
import type { ManifestVerdict } from '../sql/manifests.js';
import { validateBackupId } from '../task/backup-id.js';
import type { TaskRow } from '../task/task.js';
import { readShardArchive } from '../archive/archive-store.js';
import type { PointShard, RestorePoint } from '../cluster/restore-point-model.js';
import { gtidInArchive } from './archive-read.js';
import { AFTER_REPLAY, pointProblems, startPositionOf } from './plan-model.js';
import { coverBinlogs, findPoint, NO_BACKUP, planHead, readArchive, type PlanRequest, type PlanResult, type ShardPlan } from './plan.js';
import { candidatesFromManifests, manifestBeforePoint, newestUsableBackup } from './point-choice.js';
import { readRepoManifest, repoBackups, type RepoBackup } from './repo-files.js';

/** `why`: what says the cluster cannot be reached (printed with the plan). */
export async function restorePlanFromRepository(repo: Repository, req: PlanRequest, why: string): Promise<PlanResult> {
  if (req.backupId !== undefined) validateBackupId(req.backupId, 'backup id');
  const found = await findPoint({ ...req, repo }, undefined);
  const { point, name } = found;
  const backups = (await repoBackups(repo)).reverse();
  let backupId = req.backupId;
  if (backupId === undefined && point && point.status === 'taken')
    backupId = newestUsableBackup(
      point,
      candidatesFromManifests(
        point,
        backups.map((b) => ({ backupId: b.backupId, manifests: b.instances.flatMap((i) => (i.manifest ? [i.manifest] : [])) })),
      ),
    );
  const res = planHead(req, found, backupId ?? '');
  res.fromRepository = why;
  res.afterReplay = AFTER_REPLAY;
  res.problems.push(...pointProblems(point, name, []));
  if (!point || point.status !== 'taken') return res;
  res.point = point;
  if (backupId === undefined) {
    res.problems.push(NO_BACKUP);
    return res;
  }
  const backup = backups.find((b) => b.backupId === backupId);
  if (!backup) {
    res.problems.push(`backup ${backupId} is not in the repository (${repo.where})`);
    return res;
  }
  res.shards = await Promise.all(point.shards.map((shard) => planShard(repo, backup, point, shard, why)));
  return res;
}

async function planShard(repo: Repository, backup: RepoBackup, point: RestorePoint, shard: PointShard, why: string): Promise<ShardPlan> {
  const of = (role: string) =>
    backup.instances.find(
      (i) => i.manifest?.shardValue === shard.shardValue && i.manifest.role === role && manifestBeforePoint(i.manifest, point),
    );
  const inst = of('master') ?? of('slave');
  if (!inst?.manifest)
    return {
      shard,
      problem:
        `no usable backup of shard ${shard.shardValue} (${shard.serverName}) in backup ${backup.backupId} in the repository ` +
        `(none complete there whose GTID position the point's ${shard.gtid} covers)`,
    };
  const from = inst.manifest.role === 'master' ? 'master' : 'replica';
  const plan: ShardPlan = { shard, backup: taskOf(backup.backupId, inst.manifest, shard, from), from };
  plan.repoKey = instanceKey(repo, backup.backupId, inst.host, inst.port);
  try {
    const m = await readRepoManifest(repo, backup.backupId, inst.host, inst.port);
    if (!m) throw new Error('its manifest is gone');
    plan.published = verdictOf(m.text, m.sha256, m.manifest);
  } catch (err) {
    plan.repoProblem = `its manifest cannot be read from the repository: ${errorMessage(err)}`;
    return plan;
  }
  const manifest = inst.manifest;
  plan.start = startPositionOf(manifest, from);
  const view = await readArchive(plan, readShardArchive(repo, shard.shardValue));
  const { binlogFile, binlogPos } = plan.start;
  // A dump's GTID was read a moment after its snapshot: its file/offset is mapped in the archive.
  if (binlogFile !== undefined && binlogPos !== undefined && (manifest.tool.name === 'mariadb-dump' || !plan.start.gtid)) {
    const gtid = view ? await gtidInArchive(repo, view.files, shard, binlogFile, binlogPos) : undefined;
    if (gtid !== undefined) plan.backupGtid = gtid;
    else plan.start.problem = `the binlog archive does not hold ${binlogFile}:${binlogPos}, and ${why}: its GTID position cannot be told`;
  } else if (plan.start.gtid) plan.backupGtid = plan.start.gtid;
  await coverBinlogs(plan, view, `${why}: the master's binlogs cannot be read`);
  return plan;
}

/** The task row the plan's printers expect, from what the manifest says (its agent's clock). */
function taskOf(backupId: string, m: Manifest, shard: PointShard, from: 'master' | 'replica'): TaskRow {
  return {
    backupId,
    host: m.host,
    port: m.port,
    shardValue: m.shardValue,
    serverName: from === 'master' ? shard.serverName : `${shard.serverName}'s replica`,
    wrapper: from === 'master' ? 'mysql' : 'mysql_slave',
    status: 'success',
    taskPid: -1,
    createdAt: m.startedAt,
    updatedAt: m.endedAt,
    createdAgeS: 0,
    updatedAgeS: 0,
  };
}

function verdictOf(text: string, sha256: string, m: Manifest): ManifestVerdict {
  return {
    backupId: m.backupId,
    host: m.host,
    port: m.port,
    shardValue: m.shardValue,
    role: m.role,
    tool: m.tool.name,
    dir: '',
    bytes: m.bytes,
    manifestSha256: sha256,
    verdict: 'ok',
    verdictDetail: '',
    manifest: text,
  };
}
