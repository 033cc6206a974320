// One kept connection per served instance (the daemon's): opened once, used by every tick and by
// housekeeping, re-opened after an error with backoff, closed when the instance goes away or its
// settings change. An idle tick then costs its statements and no connection.
import { connect, type Connection, type ConnectOptions, type Endpoint } from './connect.js';
import { errorMessage, InstanceError } from '../errors.js';
import { formatDuration } from '../format.js';

export const RECONNECT = { firstMs: 1000, capMs: 60_000 } as const;

interface Entry {
  identity: string;
  conn?: Connection;
  opening?: Promise<Connection>;
  failures: number;
  notBefore: number;
  lastError?: string;
  /** The failure itself: the error thrown while backing off wraps it, so its code (refused, login denied …) is kept. */
  lastFailure?: unknown;
}

/** Everything that makes a connection: a change in any of these needs a new one. */
const identityOf = (ep: Endpoint): string => JSON.stringify([ep.host, ep.port, ep.user, ep.password]);

export class KeptConnections {
  private readonly entries = new Map<string, Entry>();
  /** Connections opened so far (for tests and benchmarks: after start-up it must stay put). */
  opened = 0;

  constructor(
    private readonly options: ConnectOptions = {},
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The connection of the instance `name` (its drop-in file), opened if needed. While backing off
   * after a failure it throws the last error at once instead of knocking again.
   */
  async get(name: string, ep: Endpoint): Promise<Connection> {
    const identity = identityOf(ep);
    let e = this.entries.get(name);
    if (e && e.identity !== identity) {
      await this.drop(name);
      e = undefined;
    }
    if (!e) {
      e = { identity, failures: 0, notBefore: 0 };
      this.entries.set(name, e);
    }
    if (e.conn && !e.conn.broken) return e.conn;
    if (e.conn?.broken) {
      void e.conn.close();
      e.conn = undefined;
    }
    if (e.opening) return e.opening;
    if (this.now() < e.notBefore) {
      const wait = formatDuration(e.notBefore - this.now());
      const code = (e.lastFailure as { code?: unknown } | undefined)?.code;
      throw new InstanceError(
        `${ep.host}:${ep.port}`,
        `${e.lastError ?? 'not reachable'} (next connection attempt in ${wait})`,
        typeof code === 'string' ? code : undefined,
        { cause: e.lastFailure },
      );
    }
    const entry = e;
    entry.opening = connect(ep, this.options).then(
      (conn) => {
        this.opened++;
        entry.conn = conn;
        entry.failures = 0;
        entry.notBefore = 0;
        entry.opening = undefined;
        return conn;
      },
      (err: unknown) => {
        entry.failures++;
        entry.notBefore = this.now() + Math.min(RECONNECT.firstMs * 2 ** (entry.failures - 1), RECONNECT.capMs);
        entry.lastError = errorMessage(err);
        entry.lastFailure = err;
        entry.opening = undefined;
        throw err;
      },
    );
    return entry.opening;
  }

  /** After a failed statement: a broken connection is replaced at the next get(). */
  failed(name: string): void {
    const e = this.entries.get(name);
    if (e?.conn?.broken) {
      void e.conn.close();
      e.conn = undefined;
    }
  }

  /** Closes the connections of instances no longer served. */
  async retain(names: ReadonlySet<string>): Promise<void> {
    await Promise.all([...this.entries.keys()].filter((n) => !names.has(n)).map((n) => this.drop(n)));
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((n) => this.drop(n)));
  }

  private async drop(name: string): Promise<void> {
    const e = this.entries.get(name);
    this.entries.delete(name);
    const conn = e?.conn ?? (await e?.opening?.catch(() => undefined));
    await conn?.close();
  }
}
