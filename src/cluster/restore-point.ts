// `restore-point` (issue 12): a cluster-wide point every shard can be rolled forward to.
//
// Commits are blocked on every Spider node that takes writes, each shard master's binlog position
// (and its prepared XA) is read while the block is held, the block is released, and the point is
// recorded through the spider master (each shard's row on that shard's master). Nothing may freeze
// writes for long: the block is acquired under a short timeout on all nodes at once, and if any
// node cannot get it in time every node is released and the attempt retried after a backoff.
// Each node's block lives in one connection of its own, closed on any error; the server drops it
// by itself (wait_timeout) should this process vanish without closing the socket.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { connect, errnoOf, STATEMENT_TIMEOUT, withConnection, type Connection, type ConnectOptions, type Endpoint } from '../db/connect.js';
import { errorMessage, OperationError } from '../errors.js';
import { formatDuration } from '../format.js';
import { createLocalRestorePointTable, createSchema, createSpiderRestorePointTable } from '../sql/ddl.js';
import * as sql from '../sql/restore-point.js';
import type { ServerRow } from '../sql/servers.js';
import { validateBackupId } from '../task/backup-id.js';
import { groupPoints, pointTargets, retryDelayMs, rowsOf, type PointTargets, type RestorePoint } from './restore-point-model.js';
import { storePoint } from './point-store.js';
import { endpointOf, type ClusterSession } from './session.js';
import { shardTablesOf, type ShardTables } from './shard-tables.js';

export class RestorePointError extends OperationError {
  override readonly name = 'RestorePointError';
}

/** A point of that name is already recorded (callers that want "at most once" treat it as done). */
export class RestorePointExistsError extends RestorePointError {
  constructor(readonly point: RestorePoint) {
    super(
      point.status === 'opted-out'
        ? `restore point ${JSON.stringify(point.name)}: its backup was scheduled with --no-restore-point (${point.takenAt})`
        : `restore point ${JSON.stringify(point.name)} already exists (taken ${point.takenAt})`,
    );
  }
}

export interface TakeOptions {
  name: string;
  /** Longest wait for the block on any node before every node is released (default 2 s). */
  acquireTimeoutMs?: number;
  /** Longest wait for the shard masters' positions while the block is held (default 5 s). */
  holdTimeoutMs?: number;
  /** Attempts before giving up (default 5). */
  attempts?: number;
  /** How commits are blocked (default BACKUP STAGE BLOCK_COMMIT; the bench also measures FTWRL). */
  method?: sql.BlockMethod;
}

export interface TakeDeps {
  config: AgentConfig;
  logger: Logger;
}

export interface TakeResult {
  point: RestorePoint;
  attempts: number;
  failures: string[];
  /** Said on stderr / in the log; a point recorded but not written to the repository is one. */
  warnings: string[];
  /** Where the point was written in the repository (`<prefix>/points/<name>.json`); undefined without one or when that failed. */
  stored?: string;
}

export const DEFAULTS = { acquireTimeoutMs: 2000, holdTimeoutMs: 5000, attempts: 5 } as const;

/** Not the primary: NotPrimaryError. */
export async function takeRestorePoint(deps: TakeDeps, session: ClusterSession, opts: TakeOptions): Promise<TakeResult> {
  const name = validateBackupId(opts.name, 'restore point name');
  const servers = await session.primaryServers();
  const targets = pointTargets(servers, spiderRow(session.spider, servers));
  const res: TakeResult = await takeOnTargets(deps, session.spider, targets, { ...opts, name });
  // The rows are the record: a repository that cannot be written leaves the point taken, and says so.
  try {
    const stored = await storePoint(deps.config, [session.spider.file], res.point);
    if (stored !== undefined) res.stored = stored;
  } catch (err) {
    const why = `restore point ${JSON.stringify(name)} recorded, but not written to the repository: ${errorMessage(err)}`;
    deps.logger.warn({ restorePoint: name, err: errorMessage(err) }, why);
    res.warnings.push(why);
  }
  return res;
}

/** The spider master as a mysql.servers row, with the credentials of its own ini. */
function spiderRow(spider: Endpoint, servers: readonly ServerRow[]): ServerRow {
  const listed = servers.find((s) => s.wrapper.toUpperCase() === 'SPIDER' && s.host === spider.host && s.port === spider.port);
  return {
    serverName: listed?.serverName ?? 'SPIDER',
    wrapper: 'SPIDER',
    host: spider.host,
    port: spider.port,
    user: spider.user,
    password: spider.password,
  };
}

async function takeOnTargets(deps: TakeDeps, spiderEp: Endpoint, targets: PointTargets, opts: TakeOptions & { name: string }) {
  const logger = deps.logger.child({ restorePoint: opts.name });
  const settings = {
    acquireTimeoutMs: opts.acquireTimeoutMs ?? DEFAULTS.acquireTimeoutMs,
    holdTimeoutMs: opts.holdTimeoutMs ?? DEFAULTS.holdTimeoutMs,
    attempts: opts.attempts ?? DEFAULTS.attempts,
    method: opts.method ?? 'backup-stage',
  };
  // Every statement outside the block is bounded by the hold timeout as well: a hung node or a
  // lock held by someone else ends the command with its name, never an endless wait.
  const bounded: ConnectOptions = { connectTimeoutMs: settings.acquireTimeoutMs + 1000, queryTimeoutMs: settings.holdTimeoutMs };
  await ensureTable(spiderEp, targets, bounded);
  const existing = await readPoint(spiderEp, opts.name, bounded);
  if (existing) throw new RestorePointExistsError(existing);

  const spiderEps = targets.spiders.map((s) => (s.host === spiderEp.host && s.port === spiderEp.port ? spiderEp : endpointOf(s)));
  const internalXa = await Promise.all(
    spiderEps.map((ep) =>
      withConnection(ep, (c) => sql.spiderInternalXa(c), bounded).catch((err: unknown) => {
        throw new RestorePointError(`restore point ${JSON.stringify(opts.name)} refused: Spider node unreachable: ${errorMessage(err)}`);
      }),
    ),
  );
  const warnings: string[] = [];
  if (internalXa.some((x) => !x)) {
    const off = targets.spiders.filter((_, i) => !internalXa[i]).map((s) => `${s.serverName} ${s.host}:${s.port}`);
    warnings.push(
      `spider_internal_xa is OFF on ${off.join(', ')}: a cross-shard commit is then not atomic over the shards, so this point is ` +
        'weaker (README: Restore points)',
    );
  }

  // The shard connections are open before any block, so the block lasts only as long as the reads.
  const shardConns = await openAll(
    opts.name,
    targets.shards.map((s) => endpointOf(s)),
    bounded,
  );
  const failures: string[] = [];
  try {
    for (let attempt = 1; attempt <= settings.attempts; attempt++) {
      const res = await attemptPoint(spiderEps, spiderEps.indexOf(spiderEp), shardConns, settings);
      if (res.ok) {
        const point: RestorePoint = {
          name: opts.name,
          takenAt: res.takenAt,
          pauseMs: res.pauseMs,
          acquireMs: res.acquireMs,
          holdMs: res.holdMs,
          spiderNodes: targets.spiders.length,
          internalXa: internalXa.every((x) => x),
          complete: true,
          status: 'taken',
          shards: targets.shards.map((s, i) => ({
            serverName: s.serverName,
            shardValue: s.shardValue,
            host: s.host,
            port: s.port,
            gtid: res.gtids[i] as string,
          })),
        };
        try {
          await recordPoint(spiderEp, point, bounded);
        } catch (err) {
          // Another taker (the agent, `schedule --wait`) recorded the name meanwhile: theirs stands.
          const theirs = errnoOf(err) === sql.ER_DUP_ENTRY ? await readPoint(spiderEp, opts.name, bounded) : undefined;
          if (theirs) throw new RestorePointExistsError(theirs);
          if (err instanceof RestorePointError) throw err;
          throw err;
        }
        logger.info({ pauseMs: point.pauseMs, acquireMs: point.acquireMs, holdMs: point.holdMs, attempt }, 'restore point taken');
        return { point, attempts: attempt, failures, warnings };
      }
      failures.push(`attempt ${attempt}: ${res.why}`);
      logger.warn({ attempt, why: res.why }, 'restore point attempt failed; every node released');
      if (attempt < settings.attempts) await delay(retryDelayMs(attempt));
    }
  } finally {
    await Promise.all(shardConns.map((c) => c.close()));
  }
  throw new RestorePointError(
    `restore point ${JSON.stringify(opts.name)} not taken after ${settings.attempts} attempts (every node released each time): ` +
      failures.join('; '),
  );
}

type Attempt =
  { ok: true; takenAt: string; gtids: string[]; pauseMs: number; acquireMs: number; holdMs: number } | { ok: false; why: string };

/**
 * One try: block every Spider node at once, read the shards, release. Whatever happens, every
 * blocking connection is closed before this returns.
 */
async function attemptPoint(
  spiders: Endpoint[],
  /** Which of `spiders` is the spider master, whose clock dates the point. */
  clock: number,
  shards: Connection[],
  s: { acquireTimeoutMs: number; holdTimeoutMs: number; method: sql.BlockMethod },
): Promise<Attempt> {
  const waitTimeoutS = Math.ceil((s.acquireTimeoutMs + s.holdTimeoutMs) / 1000) + 1;
  const opened = await Promise.allSettled(
    spiders.map(async (ep) => {
      // The client gives up a little after the server would have: a hung node cannot hang us either.
      const c = await connect(ep, { connectTimeoutMs: s.acquireTimeoutMs + 1000, queryTimeoutMs: s.acquireTimeoutMs + 1000 });
      try {
        await sql.limitBlockingSession(c, s.acquireTimeoutMs / 1000, waitTimeoutS);
      } catch (err) {
        await c.close();
        throw err;
      }
      return c;
    }),
  );
  const blockers = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  try {
    const notOpened = opened.flatMap((r, i) => (r.status === 'rejected' ? [`${nameOf(spiders[i])}: ${errorMessage(r.reason)}`] : []));
    if (notOpened.length > 0) return { ok: false, why: `cannot reach Spider node ${notOpened.join(', ')}` };

    const t0 = performance.now();
    // The first node that cannot get the block releases all the others at once: their sessions
    // are dropped, which ends a block held or still waited for.
    const dropped = new Set<Connection>();
    const blocked = await Promise.allSettled(
      blockers.map((c) =>
        block(c, s.method).catch((err: unknown) => {
          if (!dropped.has(c))
            for (const other of blockers)
              if (other !== c && !dropped.has(other)) {
                dropped.add(other);
                other.destroy();
              }
          throw err;
        }),
      ),
    );
    const tAcquired = performance.now();
    const notBlocked = blocked.flatMap((r, i) =>
      r.status === 'rejected' && !dropped.has(blockers[i] as Connection) ? [`${blockers[i]?.name}: ${blockFailure(r.reason)}`] : [],
    );
    if (notBlocked.length > 0)
      return { ok: false, why: `commit block not acquired on ${notBlocked.join(', ')}; every node released at once` };

    const [now, reads] = await Promise.all([
      sql.databaseNow(blockers[clock] as Connection).then(
        (t) => ({ ok: true as const, t }),
        (err: unknown) => ({ ok: false as const, err }),
      ),
      Promise.allSettled(shards.map(async (c) => ({ gtid: await sql.binlogGtidPos(c), xa: await sql.xaRecover(c) }))),
    ]);
    const released = await Promise.allSettled(blockers.map((c) => release(c, s.method)));
    const tReleased = performance.now();
    // A release that fails is a session that may not have held its block all along (killed, or
    // its node gone, while the positions were read): commits may have gone through it.
    const lost = released.flatMap((r, i) => (r.status === 'rejected' ? [`${blockers[i]?.name}: ${errorMessage(r.reason)}`] : []));
    if (lost.length > 0) return { ok: false, why: `commit block not held until the positions were read on ${lost.join(', ')}` };

    const unread = reads.flatMap((r, i) => (r.status === 'rejected' ? [`${shards[i]?.name}: ${errorMessage(r.reason)}`] : []));
    if (unread.length > 0) return { ok: false, why: `shard position not read: ${unread.join(', ')}` };
    if (!now.ok) return { ok: false, why: `database clock not read: ${errorMessage(now.err)}` };
    const values = reads.map((r) => (r as PromiseFulfilledResult<{ gtid: string; xa: sql.PreparedXa[] }>).value);
    const prepared = values.flatMap((v, i) => (v.xa.length > 0 ? [`${shards[i]?.name} (${v.xa.length})`] : []));
    // A commit blocked on every Spider node cannot be half way; a prepared XA here came some other way
    // (a direct XA on the shard, a Spider node not in mysql.servers): such a point would lie.
    if (prepared.length > 0) return { ok: false, why: `XA transactions prepared on ${prepared.join(', ')} while commits were blocked` };
    return {
      ok: true,
      takenAt: now.t,
      gtids: values.map((v) => v.gtid),
      pauseMs: Math.round(tReleased - t0),
      acquireMs: Math.round(tAcquired - t0),
      holdMs: Math.round(tReleased - tAcquired),
    };
  } finally {
    await Promise.all(blockers.map((c) => c.close()));
  }
}

async function block(c: Connection, method: sql.BlockMethod): Promise<void> {
  if (method === 'ftwrl') return sql.flushTablesWithReadLock(c);
  await sql.startBackupStage(c);
  await sql.blockCommitStage(c);
}

async function release(c: Connection, method: sql.BlockMethod): Promise<void> {
  if (method === 'ftwrl') return sql.unlockTables(c);
  await sql.endBackupStage(c);
}

function blockFailure(err: unknown): string {
  const errno = errnoOf(err);
  if (errno === sql.ER_STATEMENT_TIMEOUT || errno === sql.ER_LOCK_WAIT_TIMEOUT) return 'acquire timeout';
  return errorMessage(err);
}

function nameOf(ep: Endpoint | undefined): string {
  return ep ? `${ep.host}:${ep.port}` : '?';
}

async function openAll(name: string, eps: Endpoint[], opts: ConnectOptions): Promise<Connection[]> {
  const opened = await Promise.allSettled(eps.map((ep) => connect(ep, opts)));
  const conns = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = opened.flatMap((r) => (r.status === 'rejected' ? [errorMessage(r.reason)] : []));
  if (failed.length > 0) {
    await Promise.all(conns.map((c) => c.close()));
    throw new RestorePointError(`restore point ${JSON.stringify(name)} refused: shard master unreachable: ${failed.join('; ')}`);
  }
  return conns;
}

/** Creates the point table where it is missing: on each shard master, then the Spider table. */
async function ensureTable(spider: Endpoint, targets: PointTargets, opts: ConnectOptions = {}): Promise<void> {
  const exists = await withConnection(spider, (c) => sql.restorePointTableExists(c), opts);
  if (exists) return;
  await Promise.all(
    targets.shards.map((s) =>
      withConnection(
        endpointOf(s),
        async (c) => {
          await c.query(createSchema());
          await c.query(createLocalRestorePointTable());
        },
        opts,
      ),
    ),
  );
  await withConnection(
    spider,
    async (c) => {
      await c.query(createSchema());
      await c.query(createSpiderRestorePointTable(targets.shards.length));
    },
    opts,
  );
}

/**
 * A point's rows are written in one Spider transaction, but its commit reaches the shards one
 * after another: a read in between sees some shards' rows only. Such a read is taken again.
 */
async function readPoint(spider: Endpoint, name: string, opts: ConnectOptions): Promise<RestorePoint | undefined> {
  return withConnection(spider, (c) => readWholePoint(c, name), opts);
}

/**
 * Records the point within the hold timeout. Should the record still wait half way through, what
 * holds it is looked up while it waits (the server forgets the waiter once it gives up): a
 * timeout then names the node and, from its processlist, the session holding the global read lock.
 */
async function recordPoint(spider: Endpoint, point: RestorePoint, opts: ConnectOptions): Promise<void> {
  const holdMs = opts.queryTimeoutMs ?? DEFAULTS.holdTimeoutMs;
  let held: Promise<string> | undefined;
  const timer = setTimeout(() => (held = whatHolds(spider, opts)), holdMs / 2);
  try {
    await withConnection(spider, (c) => sql.insertRestorePoint(c, rowsOf(point)), opts);
  } catch (err) {
    if ((err as { code?: unknown }).code !== STATEMENT_TIMEOUT) throw err;
    throw new RestorePointError(
      `restore point ${JSON.stringify(point.name)} taken but not recorded: recording it on Spider node ${spider.host}:${spider.port} ` +
        `got no answer within the hold timeout (${formatDuration(holdMs)}): ${await (held ?? whatHolds(spider, opts))}. Nothing was ` +
        'recorded; take it again once that is over',
    );
  } finally {
    clearTimeout(timer);
    await held;
  }
}

/** What keeps the spider node from answering: the session holding its global read lock, if any. */
async function whatHolds(spider: Endpoint, opts: ConnectOptions): Promise<string> {
  try {
    const { waiting, holders } = await withConnection(
      spider,
      async (c) => ({ waiting: await sql.globalReadLockWaiters(c), holders: await sql.globalReadLockHolders(c).catch(() => []) }),
      opts,
    );
    if (holders.length > 0) {
      const named = holders.map(
        (h) => `connection ${h.id} (${h.user}@${h.host}, ${h.command} for ${h.timeS} s${h.info ? `: ${h.info}` : ''})`,
      );
      return `${named.join(', ')} holds the global read lock`;
    }
    if (waiting > 0) return 'a session holds the global read lock';
    return 'the node is hung or a lock is held';
  } catch (err) {
    return `the node does not answer (${errorMessage(err)})`;
  }
}

async function readWholePoint(c: Connection, name: string): Promise<RestorePoint | undefined> {
  for (let i = 0; ; i++) {
    const point = groupPoints(await sql.restorePointRows(c, name))[0];
    if (!point || point.complete || i >= 10) return point;
    await delay(100);
  }
}

/**
 * Records that backup `name` gets no restore point (schedule --no-restore-point): rows without a
 * position, so the agent that sees the backup complete finds the name taken and does nothing.
 */
export async function recordOptOut(spider: Endpoint, shards: readonly ServerRow[], name: string): Promise<void> {
  const targets: PointTargets = { spiders: [], shards: shards.map((s, i) => ({ ...s, shardValue: i })) };
  await ensureTable(spider, targets);
  await withConnection(spider, async (c) => {
    const takenAt = await sql.databaseNow(c);
    const point: RestorePoint = {
      name,
      takenAt,
      pauseMs: 0,
      acquireMs: 0,
      holdMs: 0,
      spiderNodes: 0,
      internalXa: true,
      complete: true,
      status: 'opted-out',
      shards: targets.shards.map((s) => ({ serverName: s.serverName, shardValue: s.shardValue, host: s.host, port: s.port, gtid: '' })),
    };
    await sql.insertRestorePoint(c, rowsOf(point));
  });
}

/**
 * Every recorded point, newest first: through the primary spider node, or away from it on the shard
 * masters, each holding its shard's rows (never through a node that is not the primary).
 */
export async function listRestorePoints(session: ClusterSession, concurrency: number): Promise<RestorePoint[]> {
  const tables = await shardTablesOf(session, concurrency);
  return groupPoints(await pointRows(tables, (c) => sql.listRestorePointRows(c)));
}

/**
 * The restore point of a backup id (item 2 names it after the backup), or undefined when none was
 * recorded; for `list`, `verify` and `restore-plan`. `spider` is a connection to the spider master.
 */
export async function restorePointOf(spider: Connection, backupId: string): Promise<RestorePoint | undefined> {
  if (!(await sql.restorePointTableExists(spider))) return undefined;
  return readWholePoint(spider, backupId);
}

/** restorePointOf on any spider node: through the primary, else from the shard masters' rows. */
export async function restorePointIn(tables: ShardTables, name: string): Promise<RestorePoint | undefined> {
  if (!tables.notPrimary) return tables.readOn(0, (c) => restorePointOf(c, name));
  return groupPoints(await pointRows(tables, (c) => sql.restorePointRows(c, name)))[0];
}

/** The restore points of these backup ids, by name, in one statement per place (`list`). */
export async function restorePointsOf(tables: ShardTables, backupIds: readonly string[]): Promise<Map<string, RestorePoint>> {
  if (backupIds.length === 0) return new Map();
  const rows = await pointRows(tables, (c) => sql.restorePointRowsOf(c, backupIds));
  return new Map(groupPoints(rows).map((p) => [p.name, p]));
}

/** The rows `read` finds in every place of the table; none where the table is not (yet). */
function pointRows(tables: ShardTables, read: (c: Connection) => Promise<sql.RestorePointRow[]>): Promise<sql.RestorePointRow[]> {
  return tables.rows(async (c) => ((await sql.restorePointTableExists(c)) ? read(c) : []));
}
