// What the spider master sees of the cluster: primacy and mysql.servers from tdbctl, and the
// tasks stored on the replicas, which only the replicas themselves hold.
import pLimit from 'p-limit';
import { connect, isNoSuchTable, withConnection, type Endpoint } from '../db.js';
import { errorMessage } from '../errors.js';
import { listServers, tdbctlGetPrimary, type PrimaryRow, type ServerRow } from '../sql/servers.js';
import * as sql from '../sql/tasks.js';
import type { TaskRow } from '../sql/tasks.js';

export interface ControlView {
  primary: PrimaryRow | undefined;
  servers: ServerRow[];
}

/** Asks tdbctl whether this spider node is primary and, if so, for mysql.servers. */
export async function readControl(tdbctl: Endpoint): Promise<ControlView> {
  return withConnection(tdbctl, async (c) => {
    const primary = (await tdbctlGetPrimary(c)).find((r) => r.isThisServer);
    return { primary, servers: primary ? await listServers(c) : [] };
  });
}

export const endpointOf = (s: ServerRow): Endpoint => ({ host: s.host, port: s.port, user: s.user, password: s.password });

export interface SlaveRead {
  server: ServerRow;
  tasks: TaskRow[];
  error?: string;
}

/**
 * Reads the tasks of each replica on the replica itself, with at most `concurrency` connections
 * open at once, so a round over a thousand replicas is neither sequential nor a connection storm.
 */
export async function readSlaveTasks(
  slaves: readonly ServerRow[],
  backupId: string | undefined,
  concurrency: number,
): Promise<SlaveRead[]> {
  return mapLimited(slaves, concurrency, async (server): Promise<SlaveRead> => {
    try {
      const c = await connect(endpointOf(server), { connectTimeoutMs: 10_000 });
      try {
        return { server, tasks: await sql.listTasks(c, { backupId, host: server.host, port: server.port }) };
      } finally {
        await c.close();
      }
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
