// One connection to one instance: opened with a timeout, every failure an InstanceError naming
// host:port (never the password), and `broken` once a failure leaves it unusable. Kept
// connections (connections.ts) are built on it.
import mysql from 'mysql2/promise';
import { explainAccessDenied } from '../config/instance.js';
import { InstanceError, errorMessage } from '../errors.js';
import { formatDuration } from '../format.js';
import { unreachableOf } from './reachability.js';

/** What the SQL functions need: something that runs one parameterised statement. */
export interface Queryable {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

export interface Endpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  /** From an instance drop-in: why its password may be cut short (named on "Access denied"). */
  passwordWarning?: string | undefined;
  /** The ini the address and login came from (an instance drop-in): named when they do not work. */
  file?: string | undefined;
}

export interface Connection extends Queryable {
  readonly name: string;
  /**
   * The connection is unusable and must be replaced: the server dropped it, or a statement failed
   * fatally (mysql2: connection lost or reset, server shut down) or timed out (its reply would
   * come out of step). A statement's own error (a missing table, a duplicate key) leaves it usable.
   */
  readonly broken: boolean;
  close(): Promise<void>;
  /** Drops the connection at once, without a word to the server (which ends the session on seeing it gone). */
  destroy(): void;
}

export interface ConnectOptions {
  connectTimeoutMs?: number;
  /** Every statement gives up after this long, so a hung server delays only its own instance. */
  queryTimeoutMs?: number;
  /**
   * Runs once on each new connection before it is handed out: session settings (a command's
   * lock_wait_timeout), with the caller's SQL. Its failure fails the connect.
   */
  init?: (q: Queryable) => Promise<void>;
  /**
   * After a statement gave up waiting for a lock (ER_LOCK_WAIT_TIMEOUT): what held it, looked up on
   * the same connection (still usable), and added to the error. A lookup that fails adds nothing.
   */
  whatHeld?: (q: Queryable) => Promise<string>;
  /**
   * Several statements in one request (one round trip), for a connection that runs only our own
   * fully parameterised SQL: off unless asked for.
   */
  multipleStatements?: boolean;
}

/** MariaDB's "Lock wait timeout exceeded" (lock_wait_timeout, innodb_lock_wait_timeout). */
export const ER_LOCK_WAIT_TIMEOUT = 1205;

/**
 * MariaDB's "Table '…' doesn't exist" (errno 1146), by mysql2's name for it. Spider passes a
 * shard's own one through for a table it has already opened.
 */
export const ER_NO_SUCH_TABLE = 'ER_NO_SUCH_TABLE';

/** mysql2's code for a statement that got no answer within its timeout. */
export const STATEMENT_TIMEOUT = 'PROTOCOL_SEQUENCE_TIMEOUT';

/** Opens one connection; failures become an InstanceError naming host:port (never the password). */
export async function connect(ep: Endpoint, opts: ConnectOptions = {}): Promise<Connection> {
  const name = `${ep.host}:${ep.port}`;
  let conn: mysql.Connection;
  try {
    conn = await mysql.createConnection({
      host: ep.host,
      port: ep.port,
      user: ep.user,
      password: ep.password,
      connectTimeout: opts.connectTimeoutMs ?? 10_000,
      dateStrings: true,
      supportBigNumbers: true,
      multipleStatements: opts.multipleStatements === true,
      // mysql2 sizes a prepared-statement cache per connection (~512 KiB); we never prepare.
      maxPreparedStatements: 1,
      // No stack captured at every statement for a driver error: ours are wrapped with the
      // instance named (wrapError), and at a thousand instances the captures were 5 % of the CPU.
      trace: false,
    });
  } catch (err) {
    throw connectError(ep, err);
  }
  let broken = false;
  // A dropped server connection emits 'error' on the connection; the next query reports it.
  conn.on('error', () => {
    broken = true;
  });
  const timeout = opts.queryTimeoutMs;
  const raw: Queryable = {
    async query(sql: string, params?: unknown[]) {
      const [result] = await conn.query(timeout === undefined ? { sql } : { sql, timeout }, params);
      return result;
    },
  };
  if (opts.init) {
    try {
      await opts.init(raw);
    } catch (err) {
      destroySocket(conn);
      throw wrapError(name, err);
    }
  }
  const { whatHeld } = opts;
  return {
    name,
    get broken() {
      return broken;
    },
    async query(sql: string, params?: unknown[]) {
      try {
        return await raw.query(sql, params);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if ((err as { fatal?: boolean }).fatal === true || code === STATEMENT_TIMEOUT) broken = true;
        if (code === STATEMENT_TIMEOUT && timeout !== undefined) {
          throw new InstanceError(
            name,
            `no answer within ${formatDuration(timeout)} (statement timeout): the server is hung or the statement waits on a lock`,
            code,
            { cause: err },
          );
        }
        if (whatHeld && !broken && errnoOf(err) === ER_LOCK_WAIT_TIMEOUT) {
          const held = await whatHeld(raw).catch(() => undefined);
          if (held !== undefined) throw new InstanceError(name, `${errorMessage(err)}: ${held}`, code, { cause: err });
        }
        throw wrapError(name, err);
      }
    },
    async close() {
      if (broken) {
        destroySocket(conn);
        return;
      }
      // A hung server must not hang the close either.
      const ended = conn.end().then(
        () => true,
        () => false,
      );
      const timer = new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref());
      if (!(await Promise.race([ended, timer]))) destroySocket(conn);
    },
    destroy() {
      broken = true;
      destroySocket(conn);
    },
  };
}

/**
 * mysql2's destroy() only half-closes the socket (end()): to a server that no longer answers (a
 * stopped process, a dead host) the socket then stays open and keeps this process alive. The
 * socket itself is destroyed.
 */
function destroySocket(conn: mysql.Connection): void {
  conn.destroy();
  (conn as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
}

/**
 * A connection that could not be opened, named by its cause: a refused login names the user and,
 * for a drop-in, its ini; an address nobody answers on names the ini it came from. Never the password.
 */
export function connectError(ep: Endpoint, err: unknown): InstanceError {
  const name = `${ep.host}:${ep.port}`;
  const wrapped = wrapError(name, err);
  const why = explainAccessDenied({ passwordWarning: ep.passwordWarning }, errorMessage(err).replace(`${name}: `, ''));
  const u = unreachableOf(err);
  const from = ep.file === undefined ? '' : ` of ${ep.file}`;
  const said =
    u?.kind === 'login-refused'
      ? `refused the login of user '${ep.user}'${from}: ${why}`
      : u !== undefined && ep.file !== undefined
        ? `${why} (the address is MysqlHost:MysqlPort${from})`
        : why;
  return new InstanceError(name, said, wrapped.code, { cause: err });
}

export function wrapError(name: string, err: unknown): InstanceError {
  if (err instanceof InstanceError) return err;
  const code = (err as { code?: string }).code;
  return new InstanceError(name, errorMessage(err), code, { cause: err });
}

/** The MariaDB error number of a failed statement, if it has one. */
export function errnoOf(err: unknown): number | undefined {
  const cause = err instanceof InstanceError ? err.cause : err;
  const errno = (cause as { errno?: unknown } | undefined)?.errno;
  return typeof errno === 'number' ? errno : undefined;
}

/**
 * Whether a statement failed on a missing table; with `table`, on that one (the server names it
 * in the message). An InstanceError carries the driver's code, a driver error its own.
 */
export function isNoSuchTable(err: unknown, table?: string): boolean {
  const e = err as { code?: unknown; message?: unknown } | null | undefined;
  if (e?.code !== ER_NO_SUCH_TABLE) return false;
  return table === undefined || (typeof e.message === 'string' && e.message.includes(table));
}

/** Runs fn with a fresh connection that is always closed. */
export async function withConnection<T>(ep: Endpoint, fn: (c: Connection) => Promise<T>, opts: ConnectOptions = {}): Promise<T> {
  const c = await connect(ep, opts);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}
