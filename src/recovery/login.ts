// The agent's own login across a load that replaces mysql.* with the source's: captured as the
// server prints it (SHOW CREATE USER, SHOW GRANTS) before, run back after, unbinlogged, so the
// agent can still log in with its drop-in whatever accounts the source had.
import type { Queryable } from '../db/connect.js';
import { setSqlLogBin } from '../sql/tasks.js';
import { currentAccount, dropUserIfExists, flushPrivileges, runServerStatement, showCreateUser, showGrants } from '../sql/recovery.js';

export interface SavedLogin {
  account: { user: string; host: string };
  create: string;
  grants: string[];
}

export async function captureLogin(db: Queryable): Promise<SavedLogin> {
  const account = await currentAccount(db);
  return { account, create: await showCreateUser(db, account), grants: await showGrants(db, account) };
}

/**
 * After the load: the grant tables are read again (the source's), then the agent's account is
 * made again exactly as it was. On a spider node the caller has replaced mysql.servers first:
 * FLUSH PRIVILEGES also loads the server cache from it.
 */
export async function recreateLogin(db: Queryable, saved: SavedLogin): Promise<void> {
  await setSqlLogBin(db, false);
  await flushPrivileges(db);
  await dropUserIfExists(db, saved.account);
  await runServerStatement(db, saved.create);
  for (const g of saved.grants) await runServerStatement(db, g);
  await flushPrivileges(db);
  await setSqlLogBin(db, true);
}
