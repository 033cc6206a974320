// Where a spider-side command reads and writes the cluster's Spider tables (the task table, the
// restore points): on the primary spider node, through its Spider table, which spans every shard;
// on any other spider node, on each shard master's own table, which holds that shard's rows
// (ddl.ts spiderPartitions: ShardValue MOD N lives on SPT<n>). A non-primary node may lack the
// tables, and a SPIDER_SLAVE node routes to the replicas: nothing is read, written or created
// through either. The command's code is the same both ways; only the places differ.
import type { Connection, Endpoint } from '../db/connect.js';
import { isNoSuchTable } from '../db/connect.js';
import { errorMessage, OperationError } from '../errors.js';
import type { ServerRow } from '../sql/servers.js';
import { initSpiderReadSession, initSpiderSession, mapLimited } from './reach.js';
import { endpointOf, type ClusterSession, type ClusterView, type NotPrimaryError } from './session.js';
import { buildTaskSet } from './task-set.js';

/** One place the rows live: the primary spider node (all of them) or one shard master (its shard's). */
export interface TablePart {
  /** "spider host:port" or "SPT0 host:port", for messages. */
  name: string;
  endpoint: Endpoint;
  /** Through a Spider table (its connection gets the spider session settings). */
  spider: boolean;
}

export interface PartOutcome<T> {
  part: TablePart;
  value?: T;
  error?: unknown;
}

export class ShardTables {
  /** In ShardValue MOD N order when direct (parts[i] is SPT<i>); else the spider node alone. */
  readonly parts: TablePart[];

  constructor(
    private readonly session: ClusterSession,
    readonly view: ClusterView,
    private readonly concurrency: number,
  ) {
    if (!view.notPrimary) {
      this.parts = [{ name: `spider ${session.spiderName}`, endpoint: session.spider, spider: true }];
      return;
    }
    const masters = buildTaskSet(view.servers, session.spider, 'direct').masters;
    this.parts = masters.map((m) => ({ name: `${m.serverName} ${m.host}:${m.port}`, endpoint: endpointOf(m), spider: false }));
  }

  get servers(): ServerRow[] {
    return this.view.servers;
  }

  /** Set away from the primary: the rows are the shard masters' own. */
  get notPrimary(): NotPrimaryError | undefined {
    return this.view.notPrimary;
  }

  /**
   * Runs `fn` on every part (at most [schedule] wait_concurrency at once); each outcome apart. A
   * read is retried once on a broken kept connection; `writer`: on the session that writes next.
   */
  each<T>(fn: (c: Connection) => Promise<T>, writer = false): Promise<PartOutcome<T>[]> {
    return mapLimited(this.parts, this.concurrency, async (part): Promise<PartOutcome<T>> => {
      try {
        return { part, value: await (writer ? this.write(part, fn) : this.read(part, fn)) };
      } catch (error) {
        return { part, error };
      }
    });
  }

  /**
   * The rows of every part in one list. A part without the table has none, unless another part
   * has it (then it is a table that cannot be read): the first failure is thrown, as a statement
   * through the Spider table fails when one shard does.
   */
  async rows<T>(fn: (c: Connection) => Promise<T[]>, writer = false): Promise<T[]> {
    const outcomes = await this.each(fn, writer);
    const failed = failures(outcomes)[0];
    // A missing table beside one that is there is no "nothing yet": it must not read as such.
    if (failed && isNoSuchTable(failed.error)) throw new OperationError(`${failed.part.name}: ${errorMessage(failed.error)}`);
    if (failed) throw failed.error;
    return outcomes.flatMap((o) => o.value ?? []);
  }

  /** A read on the part that holds rows of this ShardValue. */
  readOn<T>(shardValue: number, fn: (c: Connection) => Promise<T>): Promise<T> {
    return this.read(this.partOf(shardValue), fn);
  }

  /** A change on the part that holds rows of this ShardValue (never retried). */
  writeOn<T>(shardValue: number, fn: (c: Connection) => Promise<T>): Promise<T> {
    return this.write(this.partOf(shardValue), fn);
  }

  partOf(shardValue: number): TablePart {
    const n = this.parts.length;
    return this.parts[this.view.notPrimary ? ((shardValue % n) + n) % n : 0] as TablePart;
  }

  private write<T>(part: TablePart, fn: (c: Connection) => Promise<T>): Promise<T> {
    return this.session.connections.use(part.endpoint, fn, part.spider ? { init: initSpiderSession } : {});
  }

  private read<T>(part: TablePart, fn: (c: Connection) => Promise<T>): Promise<T> {
    return this.session.connections.use(part.endpoint, fn, { retry: true, ...(part.spider ? { init: initSpiderReadSession } : {}) });
  }
}

/**
 * The outcomes that failed. A missing table counts as "nothing there yet" only when no part has
 * the table; beside a part that has it, it is a table that cannot be read.
 */
export function failures<T>(outcomes: readonly PartOutcome<T>[]): PartOutcome<T>[] {
  const anyTable = outcomes.some((o) => o.error === undefined);
  return outcomes.filter((o) => o.error !== undefined && (anyTable || !isNoSuchTable(o.error)));
}

/** The session's Spider tables: through this node when it is the primary, else each shard master's (and the note says so). */
export async function shardTablesOf(session: ClusterSession, concurrency: number): Promise<ShardTables> {
  const view = await session.view();
  const tables = new ShardTables(session, view, concurrency);
  if (view.notPrimary) session.answeredDirectly(view.notPrimary);
  return tables;
}
