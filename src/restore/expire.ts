// `expire` (README "Repository"): which backups in the repository go, by the retention rule, and
// deleting exactly those. A backup is kept when it is among the newest N complete ones or younger
// than D days; the newest complete one always stays, a running one always stays. "Complete": every
// task of the id `success` (the task table, when the cluster can be read) and every instance's
// manifest in the repository; with the cluster unreachable, the manifests alone. A restore point
// goes with its base backup: its rows are deleted from the restore point table, its object from
// `<prefix>/points/`. Automatic points (auto-…) older than the oldest kept backup go too, and so do
// the archived binlog files no kept backup or point needs (expire-binlogs.ts).
import type { BackupState, BackupSummary } from '../cluster/history.js';
import type { ArchivedFile } from '../archive/archive-index.js';
import { INDEX_OBJECT, readShardArchive } from '../archive/archive-store.js';
import { pointKey } from '../cluster/point-store.js';
import { isAutoPoint, type RestorePoint } from '../cluster/restore-point-model.js';
import { errorMessage } from '../errors.js';
import type { Manifest } from '../runner/manifest.js';
import { describeArchived, judgeShardBinlogs, shardStartOf, type ShardStart } from './expire-binlogs.js';
import { readLocks, describeHolder, type LockHolder } from '../repo/lock.js';
import { backupKey, MANIFEST_OBJECT, type Repository } from '../repo/repository.js';
import { repoBackups, type RepoBackup } from './repo-files.js';

export type ExpireState = BackupState | 'incomplete';

export interface RetentionPolicy {
  keep?: number | undefined;
  keepDays?: number | undefined;
}

export interface ExpireEntry {
  backupId: string;
  state: ExpireState;
  /** Stored bytes under the backup's key (what deleting it frees). */
  bytes: number;
  startedAt: Date;
  keep: boolean;
  /** Why it is kept or goes, for the table. */
  why: string;
  /** Restore points that go with it (names). */
  points: string[];
}

export interface ClusterView {
  /** Every backup the task table knows, by id. */
  summaries: Map<string, BackupSummary>;
  points: RestorePoint[];
}

/** An archived binlog file that goes: its segment objects, then its index. */
export interface ExpireBinlog {
  file: ArchivedFile;
  /** Stored bytes of its segments (as its index lists them). */
  bytes: number;
  why: string;
}

export interface ExpirePlan {
  /** Newest first. */
  entries: ExpireEntry[];
  toDelete: ExpireEntry[];
  /** Automatic points older than the oldest kept backup that no deleted backup takes with it. */
  autoPoints: string[];
  /** Archived binlog files no kept backup or point needs, shard by shard. */
  binlogs: ExpireBinlog[];
  /** How completeness was judged. */
  judgedBy: 'tasks and manifests' | 'manifests alone';
  notes: string[];
  /** Live locks found (a confirmed expire refuses while another holds one). */
  locks: LockHolder[];
}

/** A backup without every manifest, with the cluster unreachable, may still be uploading within a task's life (12 h) and more. */
const MAYBE_RUNNING_MS = 24 * 3600_000;
const DAY_MS = 86_400_000;

/** Decides, from the repository's content and (when reachable) the cluster's view. Deletes nothing. */
export async function planExpire(
  repo: Repository,
  policy: RetentionPolicy,
  cluster: ClusterView | undefined,
  opts: { now?: Date; ownLock?: string } = {},
): Promise<ExpirePlan> {
  const now = opts.now ?? new Date();
  const held = await repoBackups(repo);
  const notes: string[] = [];
  const judged = held.map((b) => ({ b, state: stateOf(b, cluster, now) }));
  // Newest first: by start, then id.
  judged.sort((x, y) => y.b.startedAt.getTime() - x.b.startedAt.getTime() || y.b.backupId.localeCompare(x.b.backupId));
  const complete = judged.filter((j) => j.state === 'complete');
  const newest = complete[0]?.b.backupId;
  const keepN = new Set(complete.slice(0, policy.keep ?? 0).map((j) => j.b.backupId));
  const entries: ExpireEntry[] = judged.map(({ b, state }) => {
    const ageMs = now.getTime() - b.startedAt.getTime();
    let keep = true;
    let why: string;
    if (b.backupId === newest) why = 'the newest complete backup';
    else if (state === 'running' || state === 'unknown') why = state === 'running' ? 'still running' : 'its state cannot be told';
    else if (state === 'incomplete' && !cluster && ageMs < MAYBE_RUNNING_MS) why = 'not every manifest, maybe still uploading';
    else if (keepN.has(b.backupId)) why = `among the newest ${policy.keep} complete`;
    else if (policy.keepDays !== undefined && ageMs < policy.keepDays * DAY_MS) why = `younger than ${policy.keepDays} day(s)`;
    else {
      keep = false;
      why = state === 'complete' ? 'older than the retention' : `${state}`;
    }
    return { backupId: b.backupId, state, bytes: b.bytes, startedAt: b.startedAt, keep, why, points: [] };
  });
  let autoPoints: string[] = [];
  let binlogs: ExpireBinlog[] = [];
  if (cluster) {
    assignPoints(entries, cluster);
    autoPoints = oldAutoPoints(entries, cluster);
    const going = new Set([...entries.filter((e) => !e.keep).flatMap((e) => e.points), ...autoPoints]);
    const kept = cluster.points.filter((p) => !going.has(p.name));
    binlogs = await binlogsToExpire(repo, entries, held, kept, notes);
  } else
    notes.push('the cluster could not be read: complete judged by the manifests alone; restore points and archived binlogs not looked at');
  const locks = (await readLocks(repo, now)).live.filter((l) => l.key !== opts.ownLock);
  for (const l of locks) notes.push(`lock held: ${describeHolder(l)}`);
  return {
    entries,
    toDelete: entries.filter((e) => !e.keep),
    autoPoints,
    binlogs,
    judgedBy: cluster ? 'tasks and manifests' : 'manifests alone',
    notes,
    locks,
  };
}

function stateOf(b: RepoBackup, cluster: ClusterView | undefined, now: Date): ExpireState {
  const manifests = b.instances.filter((i) => i.manifest !== undefined).length;
  const allManifests = b.instances.length > 0 && manifests === b.instances.length;
  const s = cluster?.summaries.get(b.backupId);
  if (!s) {
    void now;
    return allManifests ? 'complete' : 'incomplete';
  }
  // Every task success, and a manifest for every task's instance (one task per instance).
  if (s.state === 'complete') return allManifests && manifests >= s.tasks.total ? 'complete' : 'incomplete';
  return s.state;
}

/**
 * A point's base backup: the backup it is named after, else the newest complete one created before
 * it was taken (both times are the database's clock). It goes when its base goes.
 */
function assignPoints(entries: ExpireEntry[], cluster: ClusterView): void {
  const byId = new Map(entries.map((e) => [e.backupId, e]));
  const created = (id: string) => cluster.summaries.get(id)?.createdAt ?? '';
  for (const p of cluster.points) {
    let base = byId.get(p.name);
    if (!base) {
      base = entries
        .filter((e) => e.state === 'complete' && created(e.backupId) !== '' && created(e.backupId) < p.takenAt)
        .sort((a, b) => (created(b.backupId) < created(a.backupId) ? -1 : 1))[0];
    }
    base?.points.push(p.name);
  }
}

/**
 * Automatic points taken before the oldest kept backup was created (both on the database's clock)
 * and not going with a deleted backup already. Nothing goes when no kept backup has a known time.
 */
function oldAutoPoints(entries: readonly ExpireEntry[], cluster: ClusterView): string[] {
  const created = entries
    .filter((e) => e.keep)
    .map((e) => cluster.summaries.get(e.backupId)?.createdAt ?? '')
    .filter((t) => t !== '')
    .sort();
  const oldest = created[0];
  if (oldest === undefined) return [];
  const withBackups = new Set(entries.filter((e) => !e.keep).flatMap((e) => e.points));
  return cluster.points
    .filter((p) => isAutoPoint(p.name) && p.takenAt < oldest && !withBackups.has(p.name))
    .map((p) => p.name)
    .sort();
}

/**
 * The archived binlog files that go, shard by shard (only the shards some kept backup covers: the
 * others keep everything). A shard whose archive cannot be read keeps it, said in the notes.
 */
async function binlogsToExpire(
  repo: Repository,
  entries: readonly ExpireEntry[],
  held: readonly RepoBackup[],
  keptPoints: readonly RestorePoint[],
  notes: string[],
): Promise<ExpireBinlog[]> {
  const kept = new Set(entries.filter((e) => e.keep).map((e) => e.backupId));
  const manifestsOf = new Map<string, Manifest[]>(
    held.filter((b) => kept.has(b.backupId)).map((b) => [b.backupId, b.instances.flatMap((i) => (i.manifest ? [i.manifest] : []))]),
  );
  const shards = new Set(
    [...manifestsOf.values()]
      .flat()
      .filter((m) => !/spider|tdbctl/i.test(m.role))
      .map((m) => m.shardValue),
  );
  const out: ExpireBinlog[] = [];
  for (const shard of [...shards].sort((a, b) => a - b)) {
    const starts: (ShardStart | 'unknown')[] = [];
    for (const [backupId, manifests] of manifestsOf) {
      const s = shardStartOf(backupId, manifests, shard);
      if (s !== undefined) starts.push(s);
    }
    try {
      const view = await readShardArchive(repo, shard);
      if (view.problems.length > 0) {
        notes.push(`shard ${shard}: its archived binlogs stay, an index cannot be read: ${view.problems.join('; ')}`);
        continue;
      }
      for (const v of judgeShardBinlogs(shard, view.files, starts, keptPoints))
        if (v.go) out.push({ file: v.file, bytes: v.file.segments.reduce((n, seg) => n + seg.storedBytes, 0), why: v.why });
    } catch (err) {
      notes.push(`shard ${shard}: its archived binlogs stay, the archive cannot be read: ${errorMessage(err)}`);
    }
  }
  return out;
}

export interface ExpireDone {
  deleted: ExpireEntry[];
  /** Objects removed, all backups together. */
  objects: number;
  pointsDeleted: string[];
  /** Archived binlog files removed ("mysql-bin.000007 of host:port (shard 0)"). */
  binlogsDeleted: string[];
  /** Upload leftovers and dead locks removed. */
  leftovers: string[];
  errors: string[];
}

/**
 * Deletes the plan's backups: their restore points first (`deletePoint`), then each backup's
 * manifests (so a half-deleted backup is never complete), then the rest of its objects; then
 * leftovers of uploads below backups that are not running, and dead locks; then the old automatic
 * points and the archived binlog files. The caller holds the expire lock.
 *
 * A point's object goes before its rows: an expire interrupted in between leaves rows, which the
 * next one finds and finishes, never an object nothing lists. A binlog file's segment objects go
 * before its index, for the same reason: the index is how expire (and restores) find a file, and
 * segments without their index could never be found again (nor told from the archiver's newest
 * segment, which is stored before the index names it). An interruption can leave an index naming
 * missing segments; the file is older than every kept backup's start, so no restore needs it, and
 * the next expire removes the rest.
 */
export async function carryOutExpire(
  repo: Repository,
  plan: ExpirePlan,
  deletePoint: ((name: string) => Promise<void>) | undefined,
  deadLocks: readonly string[],
): Promise<ExpireDone> {
  const done: ExpireDone = { deleted: [], objects: 0, pointsDeleted: [], binlogsDeleted: [], leftovers: [], errors: [] };
  const removePoint = async (name: string) => {
    if (!deletePoint) throw new Error(`restore point ${name} cannot be deleted without the cluster`);
    await repo.store.remove([pointKey(repo, name)]);
    await deletePoint(name);
    done.pointsDeleted.push(name);
  };
  for (const e of plan.toDelete) {
    try {
      for (const name of e.points) await removePoint(name);
      const objects = await repo.store.list(backupKey(repo, e.backupId));
      const manifests = objects.filter((o) => o.key.endsWith(`/${MANIFEST_OBJECT}`)).map((o) => o.key);
      await repo.store.remove(manifests);
      await repo.store.remove(objects.map((o) => o.key).filter((k) => !manifests.includes(k)));
      done.leftovers.push(...(await repo.store.cleanIncomplete(backupKey(repo, e.backupId))));
      done.objects += objects.length;
      done.deleted.push(e);
    } catch (err) {
      done.errors.push(`${e.backupId}: ${errorMessage(err)}`);
    }
  }
  for (const e of plan.entries) {
    if (!e.keep || e.state === 'running' || e.state === 'unknown' || e.why.startsWith('not every manifest')) continue;
    try {
      done.leftovers.push(...(await repo.store.cleanIncomplete(backupKey(repo, e.backupId))));
    } catch (err) {
      done.errors.push(`${e.backupId}: leftovers: ${errorMessage(err)}`);
    }
  }
  if (deadLocks.length > 0) {
    await repo.store.remove(deadLocks).catch((err: unknown) => done.errors.push(`dead locks: ${errorMessage(err)}`));
    done.leftovers.push(...deadLocks);
  }
  for (const name of plan.autoPoints) {
    try {
      await removePoint(name);
    } catch (err) {
      done.errors.push(`restore point ${name}: ${errorMessage(err)}`);
    }
  }
  for (const b of plan.binlogs) {
    try {
      const index = `${b.file.folder}${INDEX_OBJECT}`;
      const objects = (await repo.store.list(b.file.folder)).map((o) => o.key).filter((k) => k !== index);
      await repo.store.remove(objects);
      await repo.store.remove([index]);
      done.objects += objects.length + 1;
      done.binlogsDeleted.push(describeArchived(b.file));
    } catch (err) {
      done.errors.push(`${describeArchived(b.file)}: ${errorMessage(err)}`);
    }
  }
  return done;
}
