import mysql from 'mysql2/promise';
import { explainAccessDenied } from './config/instance.js';
import { InstanceError, errorMessage } from './errors.js';

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
}

export interface Connection extends Queryable {
  readonly name: string;
  close(): Promise<void>;
}

export const ER_NO_SUCH_TABLE = 'ER_NO_SUCH_TABLE';

/** Opens one connection; failures become an InstanceError naming host:port (never the password). */
export async function connect(ep: Endpoint, opts: { connectTimeoutMs?: number } = {}): Promise<Connection> {
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
      multipleStatements: false,
    });
  } catch (err) {
    const wrapped = wrapError(name, err);
    if (ep.passwordWarning === undefined) throw wrapped;
    throw new InstanceError(name, explainAccessDenied({ passwordWarning: ep.passwordWarning }, errorMessage(err)), wrapped.code, {
      cause: err,
    });
  }
  // A dropped server connection emits 'error' on the connection; the next query reports it.
  conn.on('error', () => {});
  return {
    name,
    async query(sql: string, params?: unknown[]) {
      try {
        const [result] = await conn.query(sql, params);
        return result;
      } catch (err) {
        throw wrapError(name, err);
      }
    },
    async close() {
      try {
        await conn.end();
      } catch {
        conn.destroy();
      }
    },
  };
}

export function wrapError(name: string, err: unknown): InstanceError {
  if (err instanceof InstanceError) return err;
  const code = (err as { code?: string }).code;
  return new InstanceError(name, errorMessage(err), code, { cause: err });
}

export function isNoSuchTable(err: unknown): boolean {
  return err instanceof InstanceError && err.code === ER_NO_SUCH_TABLE;
}

/** Runs fn with a fresh connection that is always closed. */
export async function withConnection<T>(ep: Endpoint, fn: (c: Connection) => Promise<T>): Promise<T> {
  const c = await connect(ep);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}
