// A replica's own writes (presence, manifest verdicts, cancel and pause records, their tables) kept
// out of its binary log: a local transaction there carries the replica's server id, an errant GTID
// that breaks GTID fail-over and promotion. `SET SESSION sql_log_bin = 0` needs SUPER or BINLOG
// ADMIN; without either the write is not made at all. The task status writes are not among them:
// the old tool made them on replicas too, and they stay binlogged (README "Privileges").
import { connect, type Connection, type ConnectOptions, type Endpoint, type Queryable } from '../db/connect.js';
import { InstanceError } from '../errors.js';

/** How the refusal is told, in the agent's log, `status` and `status --cluster`. */
export const NEEDS_BINLOG_PRIVILEGE = 'needs SUPER or BINLOG ADMIN';

/**
 * Taken by the agent's unlogged session on a replica where `SET sql_log_bin` is refused, and
 * held while it lives: a session's named lock writes nothing, and tells `status --cluster` that an
 * agent serves the replica but may not report there (IS_USED_LOCK needs no privilege).
 */
const NOT_REPORTING_LOCK = 'spiderbackup.not_reporting.needs_binlog_admin';

/** Why a replica's own write was not made. */
export interface Refused {
  refused: string;
}

/** `SET SESSION sql_log_bin = 0`; the reason when the user may not, else undefined. */
export async function stopBinlogging(q: Queryable): Promise<Refused | undefined> {
  try {
    await q.query('SET SESSION sql_log_bin = 0');
    return undefined;
  } catch (err) {
    if (!isBinlogPrivilegeRefused(err)) throw err;
    return { refused: `${NEEDS_BINLOG_PRIVILEGE} to keep its own writes out of the replica's binary log (${serverMessage(err)})` };
  }
}

/**
 * Runs `fn` on a new connection to `ep` whose whole session is unbinlogged, or does nothing and
 * returns the refusal. A connection of its own: the caller's may carry task status writes, which
 * must stay binlogged.
 */
export async function withUnloggedConnection<T>(
  ep: Endpoint,
  fn: (c: Connection) => Promise<T>,
  opts?: ConnectOptions,
): Promise<{ value: T } | Refused> {
  const c = await connect(ep, opts);
  try {
    const refused = await stopBinlogging(c);
    if (refused) return refused;
    return { value: await fn(c) };
  } finally {
    await c.close();
  }
}

/** One statement: the lock that says "an agent serves this replica but may not report here". */
export async function holdNotReportingLock(q: Queryable): Promise<void> {
  await q.query('SELECT GET_LOCK(?, 0) AS got', [NOT_REPORTING_LOCK]);
}

/** Gives the lock back once the privilege has been granted (the session stays open). */
export async function releaseNotReportingLock(q: Queryable): Promise<void> {
  await q.query('SELECT RELEASE_LOCK(?) AS released', [NOT_REPORTING_LOCK]);
}

/** Whether some session holds that lock on this instance. */
export async function isNotReportingLockHeld(q: Queryable): Promise<boolean> {
  const rows = (await q.query('SELECT IS_USED_LOCK(?) AS holder', [NOT_REPORTING_LOCK])) as { holder: unknown }[];
  return rows[0]?.holder !== null && rows[0]?.holder !== undefined;
}

/** ER_SPECIFIC_ACCESS_DENIED_ERROR (1227): "you need (at least one of) the SUPER, BINLOG ADMIN privilege(s)". */
function isBinlogPrivilegeRefused(err: unknown): boolean {
  return err instanceof InstanceError && err.code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR';
}

function serverMessage(err: unknown): string {
  const cause = err instanceof InstanceError ? err.cause : undefined;
  const m = (cause as { sqlMessage?: unknown } | undefined)?.sqlMessage;
  return typeof m === 'string' ? m : err instanceof Error ? err.message : String(err);
}
