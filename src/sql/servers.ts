// Statements for the tdbctl control node: who is primary, and the cluster's mysql.servers.
import type { Queryable } from '../db/connect.js';

export interface ServerRow {
  serverName: string;
  host: string;
  port: number;
  user: string;
  password: string;
  wrapper: string;
}

export async function listServers(q: Queryable): Promise<ServerRow[]> {
  const rows = (await q.query('SELECT Server_name, Host, Port, Username, Password, Wrapper FROM mysql.servers ORDER BY Server_name')) as {
    Server_name: string;
    Host: string;
    Port: number | string;
    Username: string;
    Password: string;
    Wrapper: string;
  }[];
  return rows.map((r) => ({
    serverName: r.Server_name,
    host: r.Host,
    port: Number(r.Port),
    user: r.Username,
    password: r.Password,
    wrapper: r.Wrapper,
  }));
}

export interface PrimaryRow {
  serverName: string;
  host: string;
  port: number;
  isThisServer: boolean;
}

/** TenDB's `tdbctl get primary`; MariaDB has no such statement (tests use a stand-in endpoint). */
export async function tdbctlGetPrimary(q: Queryable): Promise<PrimaryRow[]> {
  const rows = (await q.query('tdbctl get primary')) as Record<string, unknown>[];
  return rows.map((r) => ({
    serverName: String(r.SERVER_NAME ?? ''),
    host: String(r.HOST ?? ''),
    port: Number(r.PORT ?? 0),
    isThisServer: Number(r.IS_THIS_SERVER ?? 0) === 1,
  }));
}
