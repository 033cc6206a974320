// Restore points as data: which nodes a point blocks and reads (from tdbctl's mysql.servers), the
// point a set of rows describes, and the retry delays. Pure: unit-tested without a cluster.
import type { ServerRow } from '../sql/servers.js';
import type { PointStatus, RestorePointRow } from '../sql/restore-point.js';
import { buildTaskSet } from './task-set.js';

export interface PointShard {
  serverName: string;
  shardValue: number;
  host: string;
  port: number;
  gtid: string;
}

/** What `restore-point --format json` prints, and what `list` / `verify` get from restorePointOf. */
export interface RestorePoint {
  name: string;
  /** Database clock of the spider master while the block was held. */
  takenAt: string;
  /** How long commits could be held up on some Spider node: first block statement sent → last release done. */
  pauseMs: number;
  acquireMs: number;
  holdMs: number;
  /** Spider nodes blocked (wrapper SPIDER). */
  spiderNodes: number;
  /** Every blocked Spider node had spider_internal_xa on (README: points are weaker without it). */
  internalXa: boolean;
  shards: PointShard[];
  /** Rows found for every shard the point was taken over (false: a shard master lost its row). */
  complete: boolean;
  /** 'opted-out': no point by choice (schedule --no-restore-point); shards carry no position. */
  status: PointStatus;
}

export interface PointTargets {
  /** Nodes that accept writes (wrapper SPIDER), the spider master included: every one is blocked. */
  spiders: ServerRow[];
  /** Shard masters SPT0…SPT<n-1>, by shard; their positions make the point. */
  shards: (ServerRow & { shardValue: number })[];
}

/**
 * The nodes of a point. SPIDER_SLAVE nodes are not blocked: they route to the replicas and take no
 * writes, so no commit through them changes a shard master. The spider master is blocked even if
 * mysql.servers does not list it.
 */
export function pointTargets(servers: readonly ServerRow[], spider: ServerRow): PointTargets {
  const set = buildTaskSet(servers, spider, 'restore-point'); // validates SPT<n> / wrappers as schedule does
  const spiders = servers.filter((s) => s.wrapper.toUpperCase() === 'SPIDER');
  if (!spiders.some((s) => s.host === spider.host && s.port === spider.port)) spiders.unshift(spider);
  const shards = set.masters.map((m, i) => ({ ...m, shardValue: i }));
  return { spiders, shards };
}

/** The points that `rows` (any order, any points) describe, newest first. */
export function groupPoints(rows: readonly RestorePointRow[]): RestorePoint[] {
  const byName = new Map<string, RestorePointRow[]>();
  for (const r of rows) {
    const list = byName.get(r.name) ?? [];
    list.push(r);
    byName.set(r.name, list);
  }
  const points = [...byName.values()].map((list) => pointOf(list));
  return points.sort((a, b) => (a.takenAt === b.takenAt ? a.name.localeCompare(b.name) : a.takenAt < b.takenAt ? 1 : -1));
}

function pointOf(rows: RestorePointRow[]): RestorePoint {
  const sorted = [...rows].sort((a, b) => a.shardValue - b.shardValue);
  const first = sorted[0] as RestorePointRow;
  return {
    name: first.name,
    takenAt: first.takenAt,
    pauseMs: first.pauseMs,
    acquireMs: first.acquireMs,
    holdMs: first.holdMs,
    spiderNodes: first.spiderNodes,
    internalXa: sorted.every((r) => r.internalXa),
    shards: sorted.map((r) => ({ serverName: r.serverName, shardValue: r.shardValue, host: r.host, port: r.port, gtid: r.gtid })),
    complete: sorted.length === first.shards,
    status: first.status,
  };
}

/** The rows that record `p` (one per shard). */
export function rowsOf(p: RestorePoint): RestorePointRow[] {
  return p.shards.map((s) => ({
    name: p.name,
    shardValue: s.shardValue,
    serverName: s.serverName,
    host: s.host,
    port: s.port,
    gtid: s.gtid,
    shards: p.shards.length,
    takenAt: p.takenAt,
    pauseMs: p.pauseMs,
    acquireMs: p.acquireMs,
    holdMs: p.holdMs,
    spiderNodes: p.spiderNodes,
    internalXa: p.internalXa,
    status: p.status,
  }));
}

/** The name of the automatic point of `at`: `auto-YYYYMMDD-HHMMSS` (UTC). */
export function autoPointName(at: Date): string {
  const iso = at.toISOString(); // 2026-12-05T15:30:00.000Z
  return `auto-${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}`;
}

/** Whether a point is an automatic one ([schedule] restore_point_interval), which `expire` removes with age. */
export const isAutoPoint = (name: string): boolean => /^auto-\d{8}-\d{6}$/.test(name);

/** Delay before attempt `attempt + 1` after `attempt` failed: 100 ms, 200 ms, 400 ms … at most 5 s, ±25 %. */
export function retryDelayMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(100 * 2 ** Math.max(0, attempt - 1), 5000);
  return Math.round(base * (0.75 + random() * 0.5));
}

/** The JSON shape of a point (README): name, takenAt, pauseMs, shards [{serverName, host, port, gtid}]. */
export function pointJson(p: RestorePoint): object {
  return {
    name: p.name,
    takenAt: p.takenAt,
    pauseMs: p.pauseMs,
    acquireMs: p.acquireMs,
    holdMs: p.holdMs,
    spiderNodes: p.spiderNodes,
    internalXa: p.internalXa,
    complete: p.complete,
    status: p.status,
    shards: p.shards.map((s) => ({ serverName: s.serverName, shardValue: s.shardValue, host: s.host, port: s.port, gtid: s.gtid })),
  };
}
