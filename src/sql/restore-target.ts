// Statements of `spiderbackup restore` on the target instances (issue 20): what it reads to tell
// whether a target is empty and where its datadir is, and what it runs on a target tdbctl node so
// that the new servers are its routes. The tdbctl statements are TenDB Cluster's own way to change
// the routing: rows of mysql.servers written on the tdbctl node, then `TDBCTL FLUSH ROUTING`, which
// pushes them to every spider node — TenDB Cluster's route manager documentation ("路由管理",
// route-manager.md: "路由配置完成后，需要在TenDBCTL节点执行flush操作来强制同步 … tdbctl flush routing")
// and its docker-compose set-up (TenDBCluster/TenDBCluster-DockerCompose tdbctl-routing-flush.sql:
// `replace into mysql.servers(Server_name,Host,Port,Username,Password,Wrapper) values(…)` per node,
// then `tdbctl flush routing;`).
import { format } from 'mysql2';
import type { Queryable } from '../db/connect.js';

/** Schemas the server and the agent make themselves: a target holding only these is empty. */
export const EMPTY_SCHEMAS = ['information_schema', 'mysql', 'performance_schema', 'sys', 'infodba_schema'];

/** Every schema of the instance but those of EMPTY_SCHEMAS (`test` counts: it may hold tables). */
export async function userSchemas(q: Queryable): Promise<string[]> {
  const rows = (await q.query(
    `SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN (${EMPTY_SCHEMAS.map(() => '?').join(', ')}) ORDER BY SCHEMA_NAME`,
    EMPTY_SCHEMAS,
  )) as { name: string }[];
  return rows.map((r) => r.name);
}

export async function datadirOf(q: Queryable): Promise<string> {
  const rows = (await q.query('SELECT @@datadir AS datadir')) as { datadir: string }[];
  return rows[0]?.datadir ?? '';
}

/** One route as tdbctl keeps it (a mysql.servers row). */
export interface RouteRow {
  name: string;
  host: string;
  port: number;
  user: string;
  wrapper: string;
}

const REPLACE_SERVER = 'REPLACE INTO mysql.servers (Server_name, Host, Port, Username, Password, Wrapper) VALUES (?, ?, ?, ?, ?, ?)';

/** On the tdbctl node: the route written (the password from its file, never printed). */
export async function replaceServer(q: Queryable, r: RouteRow, password: string): Promise<void> {
  await q.query(REPLACE_SERVER, [r.name, r.host, r.port, r.user, password, r.wrapper]);
}

/** On the tdbctl node: every spider node takes tdbctl's mysql.servers. */
export async function flushRouting(q: Queryable): Promise<void> {
  await q.query('TDBCTL FLUSH ROUTING');
}

/** The statements as text for a person to run, the password shown as a placeholder naming its file. */
export function routingStatements(routes: readonly RouteRow[], passwordFileOf: (r: RouteRow) => string): string[] {
  return [
    ...routes.map((r) =>
      format(REPLACE_SERVER, [r.name, r.host, r.port, r.user, `<the password in ${passwordFileOf(r)}>`, r.wrapper]).concat(';'),
    ),
    'TDBCTL FLUSH ROUTING;',
  ];
}
