// The tasks of a whole-cluster restore from its plan (pure): one per target shard master and
// replica, restored from the shard's backup and replayed to the point's GTID from the archive, and
// one per new spider node, restored from the source spider node's backup with its routes rewritten
// to the target instances. Also the lines the command prints for them.
import type { ReplayRun } from '../archive/archive-index.js';
import { formatBytes } from '../format.js';
import type { RouteRow } from '../sql/restore-target.js';
import { describeTarget, RESTORE_FORMAT, type RestoreRoute, type RestoreSource, type RestoreTaskSpec } from './job.js';
import type { TargetFile } from './target-file.js';

/** One source shard as the plan restores it. */
export interface ShardSource {
  shardValue: number;
  /** The point's server name of the shard (SPT<n>), for messages. */
  serverName: string;
  source: RestoreSource;
  /** Bytes of the backup's objects. */
  bytes: number;
  fromGtid: string;
  toGtid: string;
  runs: ReplayRun[];
}

export interface SpiderSource {
  source: RestoreSource;
  bytes: number;
}

/** What does not line up between the point's shards and the target file's, one line each. */
export function shardMismatch(target: TargetFile, shards: readonly { shardValue: number; serverName: string }[]): string[] {
  const out: string[] = [];
  const want = new Set(shards.map((s) => s.shardValue));
  for (const s of shards)
    if (!target.shards.some((t) => t.shardValue === s.shardValue))
      out.push(`${target.file}: shards: no target for shard ${s.shardValue} (${s.serverName})`);
  for (const t of target.shards)
    if (!want.has(t.shardValue))
      out.push(`${target.file}: shards."${t.shardValue}": the source has no shard ${t.shardValue} (its shards: ${[...want].join(', ')})`);
  return out;
}

/** Master and replicas of every shard (the target file's shards must match: shardMismatch). */
export function shardTasks(restoreId: string, target: TargetFile, shards: readonly ShardSource[]): RestoreTaskSpec[] {
  const out: RestoreTaskSpec[] = [];
  for (const s of shards) {
    const t = target.shards.find((x) => x.shardValue === s.shardValue);
    if (!t) continue;
    const common = {
      format: RESTORE_FORMAT,
      restoreId,
      shard: s.shardValue,
      attempt: 1,
      source: s.source,
      fromGtid: s.fromGtid,
      toGtid: s.toGtid,
      archiveRuns: s.runs,
      scratch: target.scratch,
    } as const;
    out.push({ ...common, target: { host: t.master.host, port: t.master.port }, role: 'master' });
    for (const r of t.replicas) {
      const login = target.replication as { user: string; passwordFile: string };
      out.push({
        ...common,
        target: { host: r.host, port: r.port },
        role: 'replica',
        replicateFrom: { host: t.master.host, port: t.master.port, user: login.user, passwordFile: login.passwordFile },
      });
    }
  }
  return out;
}

/** The routes of the new cluster: SPT<n> → its master, SPT_SLAVE<n> → its first replica, SPIDER<k> → the new spider nodes. */
export function routesOf(target: TargetFile): RestoreRoute[] {
  return [
    ...target.shards.map((s): RestoreRoute => ({
      name: `SPT${s.shardValue}`,
      wrapper: 'mysql',
      host: s.master.host,
      port: s.master.port,
      user: s.master.user,
      passwordFile: s.master.passwordFile,
    })),
    ...target.shards.flatMap((s): RestoreRoute[] => {
      const r = s.replicas[0];
      return r
        ? [
            {
              name: `SPT_SLAVE${s.shardValue}`,
              wrapper: 'mysql_slave',
              host: r.host,
              port: r.port,
              user: r.user,
              passwordFile: r.passwordFile,
            },
          ]
        : [];
    }),
    ...target.spider.map((s, k): RestoreRoute => ({
      name: `SPIDER${k}`,
      wrapper: 'SPIDER',
      host: s.host,
      port: s.port,
      user: s.user,
      passwordFile: s.passwordFile,
    })),
  ];
}

/** One task per new spider node, written only once every shard task is done. */
export function spiderTasks(restoreId: string, target: TargetFile, spider: SpiderSource, attempt = 1): RestoreTaskSpec[] {
  const routes = routesOf(target);
  return target.spider.map((s) => ({
    format: RESTORE_FORMAT,
    restoreId,
    target: { host: s.host, port: s.port },
    role: 'spider',
    shard: 0,
    attempt,
    source: spider.source,
    fromGtid: '',
    toGtid: '',
    archiveRuns: [],
    routes,
    scratch: target.scratch,
  }));
}

/** The routes as the tdbctl node's mysql.servers rows. */
export const routeRows = (routes: readonly RestoreRoute[]): RouteRow[] =>
  routes.map((r) => ({ name: r.name, host: r.host, port: r.port, user: r.user, wrapper: r.wrapper }));

/** One line per task: target, role, shard, source backup, GTIDs, bytes to fetch. */
export function planLine(t: RestoreTaskSpec, bytes: number | undefined): string {
  const src = `${t.source.serverName} ${t.source.host}:${t.source.port} backup ${t.source.backupId} (${t.source.tool}${bytes === undefined ? '' : `, ${formatBytes(bytes)}`})`;
  const head = `${t.role} ${describeTarget(t.target)}${t.role === 'spider' ? '' : ` shard ${t.shard}`}: from ${src}`;
  if (t.role === 'spider')
    return `${head}; routes ${(t.routes ?? []).map((r) => `${r.name} → ${r.host}:${r.port}`).join(', ')} (written once every shard reached the point)`;
  const runs = t.archiveRuns.length;
  const replay =
    runs === 0
      ? 'nothing to replay'
      : `replay ${runs} archived run(s) (${t.archiveRuns.map((r) => r.file.file).join(' ')}, ${formatBytes(t.archiveRuns.reduce((n, r) => n + r.segments.reduce((m, s) => m + s.length, 0), 0))})`;
  const repl = t.replicateFrom ? `; then replicates from ${describeTarget(t.replicateFrom)} as ${t.replicateFrom.user}` : '';
  return `${head}; after GTID ${t.fromGtid || '(start)'} ${replay} up to GTID ${t.toGtid}${repl}`;
}
