// What the spider master sees of the cluster: primacy and mysql.servers from tdbctl, and the
// tasks stored on the replicas, which only the replicas themselves hold.
import pLimit from 'p-limit';
import { connect, errnoOf, isNoSuchTable, type Connection, type Endpoint } from '../db/connect.js';
import { KeptConnections } from '../db/connections.js';
import { errorMessage, InstanceError } from '../errors.js';
import { listServers, tdbctlGetPrimary, type PrimaryRow, type ServerRow } from '../sql/servers.js';
import * as sql from '../sql/tasks.js';
import { ER_UNKNOWN_SYSTEM_VARIABLE, keepShardConnections, readWithoutShardTransactions } from '../sql/spider.js';
import type { TaskRow } from '../task/task.js';

export interface ControlView {
  primary: PrimaryRow | undefined;
  servers: ServerRow[];
}

/**
 * Asks tdbctl whether this spider node is primary and, if so, for mysql.servers. `from` says where
 * its address came from: a tdbctl that cannot be reached is named as such, not as some instance.
 */
export async function readControl(tdbctl: Endpoint, from?: string): Promise<ControlView> {
  let c: Connection;
  try {
    c = await connect(tdbctl);
  } catch (err) {
    const name = `${tdbctl.host}:${tdbctl.port}`;
    const why = errorMessage(err).replace(`${name}: `, '');
    throw new InstanceError(name, `the tdbctl node cannot be reached${from ? ` (${from})` : ''}: ${why}`, (err as InstanceError).code, {
      cause: err,
    });
  }
  try {
    const primary = (await tdbctlGetPrimary(c)).find((r) => r.isThisServer);
    return { primary, servers: primary ? await listServers(c) : [] };
  } finally {
    await c.close();
  }
}

/**
 * The kept connections of a spider-side command (`schedule --wait`, `query`): one per instance,
 * kept across the rounds of --wait; connect timeout 10 s, statements without one.
 */
export const commandConnections = (): KeptConnections => new KeptConnections({ connect: { connectTimeoutMs: 10_000 } });

/** Runs `fn` with `pool`, or with kept connections of its own that are closed afterwards. */
export async function withPool<T>(pool: KeptConnections | undefined, fn: (p: KeptConnections) => Promise<T>): Promise<T> {
  if (pool) return fn(pool);
  const own = commandConnections();
  try {
    return await fn(own);
  } finally {
    await own.close();
  }
}

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

export const endpointOf = (s: ServerRow): Endpoint => ({ host: s.host, port: s.port, user: s.user, password: s.password });

export interface SlaveRead {
  server: ServerRow;
  tasks: TaskRow[];
  error?: string;
}

/**
 * Reads the tasks of each replica on the replica itself, with at most `concurrency` reads at once,
 * so a round over a thousand replicas is neither sequential nor a connection storm. With `pool`
 * the connections are kept for the next round (one per replica); without, each is closed as soon
 * as its replica is read.
 */
export async function readSlaveTasks(
  slaves: readonly ServerRow[],
  backupId: string | undefined,
  concurrency: number,
  pool?: KeptConnections,
): Promise<SlaveRead[]> {
  return mapLimited(slaves, concurrency, async (server): Promise<SlaveRead> => {
    try {
      const read = (c: Connection) => sql.listTasks(c, { backupId, host: server.host, port: server.port });
      const tasks = await withPool(pool, (p) => p.use(endpointOf(server), read, { retry: true }));
      return { server, tasks };
    } catch (err) {
      if (isNoSuchTable(err)) return { server, tasks: [] };
      return { server, tasks: [], error: errorMessage(err) };
    }
  });
}

/** Applies `fn` to every item with bounded concurrency (the same bound as replica reads). */
export function mapLimited<T, R>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const limit = pLimit(concurrency);
  return Promise.all(items.map((i) => limit(() => fn(i))));
}
