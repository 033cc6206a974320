// One kept connection per endpoint for the spider-master commands (`schedule --wait`, `query`).
// A wait round over a thousand replicas spends most of its time in handshakes when it connects
// afresh every round; the rounds are a minute apart, so an idle connection per instance is cheap.
import { connect, type Connection, type Endpoint } from './connect.js';
import { InstanceError } from '../errors.js';

interface Entry {
  conn?: Connection;
  /** The `init`s that ran on `conn`. */
  inited: Set<(c: Connection) => Promise<void>>;
  /** Callers of one endpoint take turns, so an endpoint never gets a second connection. */
  turn: Promise<unknown>;
}

export interface UseOptions {
  /** Runs once on each connection before its first use with this `init` (session settings). */
  init?: (c: Connection) => Promise<void>;
  /**
   * `fn` only reads: when a kept connection turns out broken (a server restart or an idle
   * timeout between rounds), try once more on a new connection rather than fail the round.
   */
  retry?: boolean;
}

export class ClusterPool {
  private readonly entries = new Map<string, Entry>();
  private closed = false;

  /** Runs `fn` on the endpoint's kept connection, opening it when there is none. A broken connection is dropped. */
  use<T>(ep: Endpoint, fn: (c: Connection) => Promise<T>, opts: UseOptions = {}): Promise<T> {
    const key = `${ep.user}@${ep.host}:${ep.port}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { inited: new Set(), turn: Promise.resolve() };
      this.entries.set(key, entry);
    }
    const e = entry;
    const run = e.turn.then(() => this.run(e, ep, fn, opts, opts.retry === true));
    e.turn = run.catch(() => {});
    return run;
  }

  private async run<T>(e: Entry, ep: Endpoint, fn: (c: Connection) => Promise<T>, opts: UseOptions, mayRetry: boolean): Promise<T> {
    if (this.closed) throw new InstanceError(`${ep.host}:${ep.port}`, 'connection pool already closed');
    const kept = e.conn !== undefined;
    if (!e.conn) {
      e.conn = await connect(ep, { connectTimeoutMs: 10_000 });
      e.inited = new Set();
    }
    const conn = e.conn;
    try {
      if (opts.init && !e.inited.has(opts.init)) {
        await opts.init(conn);
        e.inited.add(opts.init);
      }
      return await fn(conn);
    } catch (err) {
      if (!isBroken(err)) throw err;
      e.conn = undefined;
      await conn.close();
      if (kept && mayRetry) return this.run(e, ep, fn, opts, false);
      throw err;
    }
  }

  /** Closes every kept connection once the uses in flight are done; later uses fail. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      [...this.entries.values()].map(async (e) => {
        await e.turn;
        const c = e.conn;
        e.conn = undefined;
        await c?.close();
      }),
    );
    this.entries.clear();
  }
}

/** Runs `fn` with `pool`, or with a pool of its own that is closed afterwards. */
export async function withPool<T>(pool: ClusterPool | undefined, fn: (p: ClusterPool) => Promise<T>): Promise<T> {
  if (pool) return fn(pool);
  const own = new ClusterPool();
  try {
    return await fn(own);
  } finally {
    await own.close();
  }
}

/**
 * Whether the connection is unusable after `err`: mysql2 marks those errors fatal (connection
 * lost or reset, server shut down); a statement's own error leaves the connection usable.
 */
function isBroken(err: unknown): boolean {
  const cause = err instanceof InstanceError ? err.cause : err;
  return (cause as { fatal?: boolean } | undefined)?.fatal === true;
}
