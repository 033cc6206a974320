// The daemon's second kept connection per replica, for its own writes there (the presence, the
// tables it creates): `sql_log_bin = 0` is set once when it opens and covers its whole session, so
// an idle tick still costs two statements and the tick's connection, which carries the task status
// writes, is never touched (those stay binlogged). Where the user may not, nothing is written
// there; the session holds the "not reporting" lock instead (sql/unlogged.ts) and asks again now
// and then, so a grant given later is picked up without a restart.
import type { Connection, Endpoint } from '../db/connect.js';
import type { KeptConnections } from '../db/connections.js';
import { holdNotReportingLock, releaseNotReportingLock, stopBinlogging } from '../sql/unlogged.js';

/** How often a refused session asks again (one statement). */
export const RECHECK_REFUSED_MS = 300_000;

interface SessionState {
  refused?: string;
  checkedAt: number;
}

export type Unlogged = { conn: Connection } | { refused: string };

export class UnloggedSessions {
  private readonly states = new WeakMap<Connection, SessionState>();

  constructor(
    private readonly kept: KeptConnections,
    private readonly now: () => number = Date.now,
  ) {}

  /** The replica's unbinlogged session, or why there is none; throws when it cannot be reached. */
  async get(ep: Endpoint): Promise<Unlogged> {
    const conn = await this.kept.get(ep);
    let state = this.states.get(conn);
    if (state === undefined || (state.refused !== undefined && this.now() - state.checkedAt >= RECHECK_REFUSED_MS)) {
      try {
        state = await this.begin(conn, state);
      } catch (err) {
        this.kept.failed(ep);
        throw err;
      }
      this.states.set(conn, state);
    }
    return state.refused === undefined ? { conn } : { refused: state.refused };
  }

  /** After a failed statement on the session: a broken connection is replaced at the next get(). */
  failed(ep: Endpoint): void {
    this.kept.failed(ep);
  }

  /** Closes the sessions of endpoints no longer served. */
  retain(eps: readonly Endpoint[]): Promise<void> {
    return this.kept.retain(eps);
  }

  close(): Promise<void> {
    return this.kept.close();
  }

  private async begin(conn: Connection, before: SessionState | undefined): Promise<SessionState> {
    const refused = await stopBinlogging(conn);
    const checkedAt = this.now();
    if (refused === undefined) {
      if (before?.refused !== undefined) await releaseNotReportingLock(conn);
      return { checkedAt };
    }
    if (before?.refused === undefined) await holdNotReportingLock(conn);
    return { refused: refused.refused, checkedAt };
  }
}
