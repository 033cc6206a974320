// The task set of one global backup, from the control node's mysql.servers (SPEC §3 schedule).
// Pure: unit-tested without a cluster.
import type { ServerRow } from '../sql/servers.js';
import type { NewTaskRow } from '../sql/tasks.js';
import { OperationError } from '../errors.js';
import { STATUS } from '../task/status.js';

export class TaskSetError extends OperationError {
  override readonly name = 'TaskSetError';
}

const MASTER = /^SPT(\d+)$/;
const SLAVE = /^SPT_SLAVE(\d+)$/;
/** Wrappers of nodes that get no task of their own (other spiders, control nodes). */
const OTHER_WRAPPERS = new Set(['SPIDER', 'SPIDER_SLAVE', 'TDBCTL']);

export interface TaskSet {
  tasks: NewTaskRow[];
  /** Number of shards (SPT0…SPT<n-1>): the Spider table's MOD. */
  shards: number;
  masters: ServerRow[];
  slaves: ServerRow[];
}

export function buildTaskSet(servers: readonly ServerRow[], spider: { host: string; port: number }, backupId: string): TaskSet {
  const masters: (ServerRow & { shard: number })[] = [];
  const slaves: (ServerRow & { shard: number })[] = [];
  let spiderRow: ServerRow | undefined;
  for (const s of servers) {
    const wrapper = s.wrapper.toLowerCase();
    const m = MASTER.exec(s.serverName);
    const sl = SLAVE.exec(s.serverName);
    if (wrapper === 'mysql' && m) masters.push({ ...s, shard: Number(m[1]) });
    else if (wrapper === 'mysql_slave' && sl) slaves.push({ ...s, shard: Number(sl[1]) });
    else if (OTHER_WRAPPERS.has(s.wrapper.toUpperCase())) {
      if (s.wrapper.toUpperCase() === 'SPIDER' && s.host === spider.host && s.port === spider.port) spiderRow = s;
    } else {
      throw new TaskSetError(
        `mysql.servers: Server_name ${JSON.stringify(s.serverName)} with Wrapper ${JSON.stringify(s.wrapper)} is not SPT<n> (mysql), ` +
          `SPT_SLAVE<n> (mysql_slave), SPIDER, SPIDER_SLAVE or TDBCTL`,
      );
    }
  }
  if (masters.length === 0) throw new TaskSetError('mysql.servers lists no SPT<n> shard master');
  masters.sort((a, b) => a.shard - b.shard);
  masters.forEach((m, i) => {
    if (m.shard !== i)
      throw new TaskSetError(
        `mysql.servers: shard masters must be SPT0…SPT${masters.length - 1}, found ${masters.map((x) => x.serverName).join(', ')}`,
      );
  });
  for (const s of slaves) {
    if (s.shard >= masters.length) throw new TaskSetError(`mysql.servers: ${s.serverName} has no master SPT${s.shard}`);
  }

  const seen = new Set<string>();
  const tasks: NewTaskRow[] = [];
  const add = (t: NewTaskRow) => {
    const hp = `${t.host}:${t.port}`;
    if (seen.has(hp)) return;
    seen.add(hp);
    tasks.push(t);
  };
  // Masters before slaves, so an instance listed as both is backed up as a master.
  add({
    serverName: spiderRow?.serverName ?? 'SPIDER',
    wrapper: 'SPIDER',
    host: spider.host,
    port: spider.port,
    shardValue: 0,
    backupId,
    status: STATUS.init,
  });
  for (const m of masters)
    add({ serverName: m.serverName, wrapper: 'mysql', host: m.host, port: m.port, shardValue: m.shard, backupId, status: STATUS.init });
  for (const s of slaves.sort((a, b) => a.shard - b.shard)) {
    add({
      serverName: s.serverName,
      wrapper: 'mysql_slave',
      host: s.host,
      port: s.port,
      shardValue: s.shard,
      backupId,
      status: STATUS.replicated,
    });
  }
  return { tasks, shards: masters.length, masters, slaves };
}
