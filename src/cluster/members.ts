// Every instance of the cluster an agent may serve, from tdbctl's mysql.servers (as `schedule`
// reads it) plus the spider node the command runs on: what `status --cluster` shows and what
// `pause --cluster` writes to. Pure: unit-tested without a cluster.
import type { Endpoint } from '../db/connect.js';
import type { ServerRow } from '../sql/servers.js';
import type { SpiderTarget } from './session.js';

export type MemberRole = 'spider' | 'master' | 'slave';

export interface Member {
  serverName: string;
  role: MemberRole;
  /** Shard number (SPT<n> / SPT_SLAVE<n>); undefined for spider nodes. */
  shard: number | undefined;
  host: string;
  port: number;
  /** How to reach it: mysql.servers' credentials, or the -c ini's for this spider node. */
  endpoint: Endpoint;
}

const MASTER = /^SPT(\d+)$/;
const SLAVE = /^SPT_SLAVE(\d+)$/;

/**
 * Spider nodes first, then masters by shard, then replicas by shard; one entry per Host:Port (a
 * master listed twice stays a master, as its task is made). Control nodes (TDBCTL) have no agent
 * work and are left out; so are rows whose name does not say what they are.
 */
export function clusterMembers(servers: readonly ServerRow[], target: SpiderTarget): Member[] {
  const self = target.spider;
  const spiders: Member[] = [];
  const masters: Member[] = [];
  const slaves: Member[] = [];
  for (const s of servers) {
    const wrapper = s.wrapper.toUpperCase();
    const endpoint: Endpoint = { host: s.host, port: s.port, user: s.user, password: s.password };
    const base = { serverName: s.serverName, host: s.host, port: s.port, endpoint };
    const m = MASTER.exec(s.serverName);
    const sl = SLAVE.exec(s.serverName);
    if (wrapper === 'MYSQL' && m) masters.push({ ...base, role: 'master', shard: Number(m[1]) });
    else if (wrapper === 'MYSQL_SLAVE' && sl) slaves.push({ ...base, role: 'slave', shard: Number(sl[1]) });
    else if (wrapper === 'SPIDER' || wrapper === 'SPIDER_SLAVE') spiders.push({ ...base, role: 'spider', shard: undefined });
  }
  const selfKey = `${self.host}:${self.port}`;
  const listed = spiders.find((s) => `${s.host}:${s.port}` === selfKey);
  const own: Member = {
    serverName: listed?.serverName ?? 'SPIDER',
    role: 'spider',
    shard: undefined,
    host: self.host,
    port: self.port,
    endpoint: { host: self.host, port: self.port, user: self.user, password: self.password },
  };
  const byShard = (a: Member, b: Member) => (a.shard ?? 0) - (b.shard ?? 0) || a.port - b.port;
  const ordered = [own, ...spiders.filter((s) => s !== listed), ...masters.sort(byShard), ...slaves.sort(byShard)];
  const seen = new Set<string>();
  return ordered.filter((m) => {
    const k = `${m.host}:${m.port}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export const memberKey = (m: { host: string; port: number }): string => `${m.host}:${m.port}`;
