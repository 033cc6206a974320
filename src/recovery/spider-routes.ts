// A restored spider node routes only to the target cluster: its mysql.servers (the source's, from
// its dump) is replaced by the task's routes in the table in one go — the server cache is loaded
// from it only by the FLUSH PRIVILEGES after the whole set, so no statement can route to a source
// address meanwhile — then every Spider table is opened through each of its routes.
import type { Queryable } from '../db/connect.js';
import { errorMessage, OperationError } from '../errors.js';
import { setSqlLogBin } from '../sql/tasks.js';
import { deleteAllServers, flushTables, insertServer, probeSpiderPart, serverDatabases, spiderTableParts } from '../sql/recovery.js';
import { describeTarget, type RestoreRoute } from './job.js';
import { readPasswordFile } from './replica-link.js';

export class RouteError extends OperationError {
  override readonly name = 'RouteError';
}

/** Writes the routes into mysql.servers (unbinlogged), replacing every row; the caller's FLUSH PRIVILEGES loads them. */
export async function writeRoutes(db: Queryable, routes: readonly RestoreRoute[]): Promise<void> {
  if (routes.length === 0) throw new RouteError('the task lists no routes for the spider node');
  // Passwords first: a missing file must not leave the table half written.
  const withPasswords = routes.map((r) => ({ r, password: readPasswordFile(r.passwordFile, `route ${r.name} (${describeTarget(r)})`) }));
  const dbOf = new Map((await serverDatabases(db)).map((s) => [s.name, s.db]));
  await setSqlLogBin(db, false);
  try {
    await deleteAllServers(db);
    for (const { r, password } of withPasswords)
      await insertServer(db, {
        name: r.name,
        host: r.host,
        port: r.port,
        user: r.user,
        password,
        wrapper: r.wrapper,
        db: dbOf.get(r.name) ?? '',
      });
  } finally {
    await setSqlLogBin(db, true);
  }
}

/** FLUSH TABLES (Spider's open tables forget any link they had), then one row through every route. */
export async function proveRoutes(db: Queryable): Promise<number> {
  await flushTables(db);
  const parts = await spiderTableParts(db);
  for (const p of parts) {
    try {
      await probeSpiderPart(db, p);
    } catch (err) {
      const where = `${p.schema}.${p.table}${p.partition === null ? '' : ` partition ${p.partition}`}`;
      throw new RouteError(`Spider table ${where} does not answer through its route: ${errorMessage(err)}`);
    }
  }
  return parts.length;
}
