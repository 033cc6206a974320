// Kept connections, one per endpoint and credentials: the daemon's (one per served instance, used
// by every tick and by housekeeping, so an idle tick costs its statements and no handshake) and a
// spider-side command's (one per instance it reads, kept across the rounds of `--wait`, where a
// round over a thousand replicas would otherwise spend its time in handshakes). A connection that
// is `broken` (connect.ts) is replaced by a new one when next asked for.
import { createHmac, randomBytes } from 'node:crypto';
import { connect, STATEMENT_TIMEOUT, type Connection, type ConnectOptions, type Endpoint } from './connect.js';
import { errorMessage, InstanceError } from '../errors.js';
import { formatSeconds } from '../format.js';

export interface KeptConnectionsOptions {
  connect: ConnectOptions;
  /**
   * After a failed connect, no new attempt before this backoff has passed (doubling from firstMs
   * up to capMs); asking meanwhile throws the last error at once. Without it, every ask tries.
   */
  reconnect?: { firstMs: number; capMs: number };
  now?: () => number;
}

export interface UseOptions {
  /** Runs once on each connection before its first use with this `init` (session settings). */
  init?: (c: Connection) => Promise<void>;
  /**
   * `fn` only reads: when a kept connection turns out broken (a server restart or an idle
   * timeout between rounds), try once more on a new connection rather than fail. Not after a
   * statement timeout: a hung server would only double the wait.
   */
  retry?: boolean;
}

interface Entry {
  endpoint: Endpoint;
  conn?: Connection;
  opening?: Promise<Connection>;
  /** The `init`s that ran on `conn`. */
  inited: Set<(c: Connection) => Promise<void>>;
  /** Callers of use() take turns, so an endpoint never gets a second connection. */
  turn: Promise<unknown>;
  failures: number;
  notBefore: number;
  lastError?: string;
  /** The failure itself: the error thrown while backing off wraps it, so its code (refused, login denied …) is kept. */
  lastFailure?: unknown;
}

export class KeptConnections {
  private readonly entries = new Map<string, Entry>();
  /** Keys name the password by a keyed digest: a key never holds it, even if one were logged. */
  private readonly salt = randomBytes(16);
  private closed = false;
  /** Connections opened so far (for tests and benchmarks: after start-up it must stay put). */
  opened = 0;

  constructor(private readonly options: KeptConnectionsOptions) {}

  /**
   * The endpoint's kept connection, opened if needed; the caller shares it (the daemon's tick and
   * housekeeping). Everything that makes a connection is in the key: a changed password or user
   * gets a new one, never the connection opened with the old.
   */
  get(ep: Endpoint): Promise<Connection> {
    return this.acquire(this.entryOf(ep));
  }

  /** After a failed statement on get()'s connection: a broken one is replaced at the next ask. */
  failed(ep: Endpoint): void {
    const e = this.entries.get(this.keyOf(ep));
    if (e) this.dropBroken(e);
  }

  /**
   * Runs `fn` on the endpoint's kept connection, one caller at a time per endpoint. A connection
   * that `fn` leaves broken is dropped (with `retry`, and if it was a kept one, `fn` runs once more
   * on a new connection).
   */
  use<T>(ep: Endpoint, fn: (c: Connection) => Promise<T>, opts: UseOptions = {}): Promise<T> {
    const e = this.entryOf(ep);
    const run = e.turn.then(() => this.run(e, fn, opts, opts.retry === true));
    e.turn = run.catch(() => {});
    return run;
  }

  /** Closes the connections of endpoints not in `eps` (the daemon: instances no longer served). */
  async retain(eps: readonly Endpoint[]): Promise<void> {
    const keep = new Set(eps.map((ep) => this.keyOf(ep)));
    await Promise.all([...this.entries.keys()].filter((k) => !keep.has(k)).map((k) => this.drop(k)));
  }

  /** Closes every connection once the uses in flight are done; later asks fail. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.entries.keys()].map((k) => this.drop(k)));
  }

  private async run<T>(e: Entry, fn: (c: Connection) => Promise<T>, opts: UseOptions, mayRetry: boolean): Promise<T> {
    const kept = e.conn !== undefined && !e.conn.broken;
    const conn = await this.acquire(e);
    try {
      if (opts.init && !e.inited.has(opts.init)) {
        await opts.init(conn);
        e.inited.add(opts.init);
      }
      return await fn(conn);
    } catch (err) {
      if (!conn.broken) throw err;
      this.dropBroken(e);
      if (kept && mayRetry && (err as { code?: unknown }).code !== STATEMENT_TIMEOUT) return this.run(e, fn, opts, false);
      throw err;
    }
  }

  private acquire(e: Entry): Promise<Connection> {
    const ep = e.endpoint;
    if (this.closed) return Promise.reject(new InstanceError(`${ep.host}:${ep.port}`, 'connection pool already closed'));
    this.dropBroken(e);
    if (e.conn) return Promise.resolve(e.conn);
    if (e.opening) return e.opening;
    const now = this.options.now ?? Date.now;
    if (now() < e.notBefore) {
      const wait = formatSeconds(Math.ceil((e.notBefore - now()) / 1000));
      const code = (e.lastFailure as { code?: unknown } | undefined)?.code;
      return Promise.reject(
        new InstanceError(
          `${ep.host}:${ep.port}`,
          `${e.lastError ?? 'not reachable'} (next connection attempt in ${wait})`,
          typeof code === 'string' ? code : undefined,
          { cause: e.lastFailure },
        ),
      );
    }
    e.opening = connect(ep, this.options.connect).then(
      (conn) => {
        this.opened++;
        e.conn = conn;
        e.inited = new Set();
        e.failures = 0;
        e.notBefore = 0;
        e.opening = undefined;
        return conn;
      },
      (err: unknown) => {
        e.failures++;
        const backoff = this.options.reconnect;
        if (backoff) e.notBefore = now() + Math.min(backoff.firstMs * 2 ** (e.failures - 1), backoff.capMs);
        // Without the address: the error thrown while backing off names it once.
        e.lastError = errorMessage(err).replace(`${ep.host}:${ep.port}: `, '');
        e.lastFailure = err;
        e.opening = undefined;
        throw err;
      },
    );
    return e.opening;
  }

  private dropBroken(e: Entry): void {
    if (!e.conn?.broken) return;
    void e.conn.close();
    e.conn = undefined;
  }

  private entryOf(ep: Endpoint): Entry {
    const key = this.keyOf(ep);
    let e = this.entries.get(key);
    if (!e) {
      e = { endpoint: ep, inited: new Set(), turn: Promise.resolve(), failures: 0, notBefore: 0 };
      this.entries.set(key, e);
    }
    return e;
  }

  private keyOf(ep: Endpoint): string {
    const password = createHmac('sha256', this.salt).update(ep.password).digest('hex').slice(0, 16);
    return `${ep.user}@${ep.host}:${ep.port}/${password}`;
  }

  private async drop(key: string): Promise<void> {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    await e.turn;
    const conn = e.conn ?? (await e.opening?.catch(() => undefined));
    e.conn = undefined;
    await conn?.close();
  }
}
