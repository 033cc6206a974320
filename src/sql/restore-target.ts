// Statements `spiderbackup restore` runs on a target tdbctl node (issue 20) so that the new
// servers are its routes (what it reads on the targets themselves is in recovery.ts, shared with
// the agents). The tdbctl statements are TenDB Cluster's own way to change
// the routing: rows of mysql.servers written on the tdbctl node, then `TDBCTL FLUSH ROUTING`, which
// pushes them to every spider node — TenDB Cluster's route manager documentation ("路由管理",
// route-manager.md: "路由配置完成后，需要在TenDBCTL节点执行flush操作来强制同步 … tdbctl flush routing")
// and its docker-compose set-up (TenDBCluster/TenDBCluster-DockerCompose tdbctl-routing-flush.sql:
// `replace into mysql.servers(Server_name,Host,Port,Username,Password,Wrapper) values(…)` per node,
// then `tdbctl flush routing;`).
import { format } from 'mysql2';
import type { Queryable } from '../db/connect.js';

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
