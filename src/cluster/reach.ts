// What the spider-side commands reach the cluster with, beside their session (session.ts): the
// session settings of a Spider connection, and reads of many servers with bounded concurrency.
import pLimit from 'p-limit';
import { errnoOf, isNoSuchTable, withConnection, type Connection, type ConnectOptions } from '../db/connect.js';
import { KeptConnections } from '../db/connections.js';
import { errorMessage } from '../errors.js';
import type { ServerRow } from '../sql/servers.js';
import * as sql from '../sql/tasks.js';
import { ER_UNKNOWN_SYSTEM_VARIABLE, keepShardConnections, readWithoutShardTransactions } from '../sql/spider.js';
import type { TaskRow } from '../task/task.js';
import { endpointOf } from './session.js';

/**
 * Session settings of every spider connection of schedule and --wait. A Spider without a setting
 * still works, only with more round trips to the shards.
 */
export async function initSpiderSession(c: Connection): Promise<void> {
  await unlessUnknown(keepShardConnections(c));
}

/** The spider session --wait reads through (it may be the one schedule wrote through). */
export async function initSpiderReadSession(c: Connection): Promise<void> {
  await unlessUnknown(keepShardConnections(c));
  await unlessUnknown(readWithoutShardTransactions(c));
}

async function unlessUnknown(setting: Promise<void>): Promise<void> {
  try {
    await setting;
  } catch (err) {
    if (errnoOf(err) !== ER_UNKNOWN_SYSTEM_VARIABLE) throw err;
  }
}

export interface SlaveRead {
  server: ServerRow;
  tasks: TaskRow[];
  error?: string;
  /**
   * The replica has no task table (the server's error): no row has arrived yet, or the table is
   * gone. Which one only the master side can tell: a caller that knows the replica has a task
   * reports it as a read failure.
   */
  noTable?: string;
}

/**
 * Reads the tasks of each replica on the replica itself, with at most `concurrency` reads at once,
 * so a round over a thousand replicas is neither sequential nor a connection storm. With kept
 * `connections` they stay open for the next round (one per replica); with connect options, each
 * is opened with them and closed as soon as its replica is read.
 */
export async function readSlaveTasks(
  slaves: readonly ServerRow[],
  backupId: string | undefined,
  concurrency: number,
  via: KeptConnections | ConnectOptions,
): Promise<SlaveRead[]> {
  return mapLimited(slaves, concurrency, async (server): Promise<SlaveRead> => {
    try {
      const read = (c: Connection) => sql.listTasks(c, { backupId, host: server.host, port: server.port });
      const ep = endpointOf(server);
      const tasks = await (via instanceof KeptConnections ? via.use(ep, read, { retry: true }) : withConnection(ep, read, via));
      return { server, tasks };
    } catch (err) {
      if (isNoSuchTable(err)) return { server, tasks: [], noTable: errorMessage(err) };
      return { server, tasks: [], error: errorMessage(err) };
    }
  });
}

/** Applies `fn` to every item with bounded concurrency (the same bound as replica reads). */
export function mapLimited<T, R>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const limit = pLimit(concurrency);
  return Promise.all(items.map((i) => limit(() => fn(i))));
}
