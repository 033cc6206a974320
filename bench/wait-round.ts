// Times one `schedule --wait` round and one `query` on a real cluster, and one replica read round
// over many replica endpoints. Run by hand:  node dist/bench/wait-round.js [shards] [endpoints]
import net from 'node:net';
import { loadAgentConfig } from '../src/config/agent.js';
import { readSlaveTasks } from '../src/cluster/reach.js';
import { queryTasks } from '../src/cluster/query.js';
import { runSchedule } from '../src/cluster/schedule.js';
import { openClusterSession, type ClusterSession } from '../src/cluster/session.js';
import { pollOnce } from '../src/cluster/wait.js';
import { createLogger } from '../src/log.js';
import type { ServerRow } from '../src/sql/servers.js';
import { ADMIN_PASSWORD, ADMIN_USER, startCluster } from '../src/sandbox/cluster.js';
import { Workspace } from '../test/support/workspace.js';

const shards = Number(process.argv[2] ?? 8);
const endpoints = Number(process.argv[3] ?? 1000);
// One-way delay added to every forwarded chunk: localhost has no network latency, a cluster does.
const latencyMs = Number(process.argv[4] ?? 2);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
async function time(n: number, fn: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return median(ms);
}

const t0 = performance.now();
const cluster = await startCluster({ shards, slaves: [...Array(shards).keys()], tdbctl: true });
console.log(
  `cluster: ${shards} shard masters + ${shards} slaves + spider + tdbctl stand-in, started in ` +
    `${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
const ws = new Workspace();
const proxies: net.Server[] = [];
try {
  const spiderIni = cluster.writeInstanceIni(ws.confDir, cluster.spider);
  const config = loadAgentConfig(ws.agentIni);
  const { logger } = createLogger({ level: 'warn', fd: 2 });
  // Each measured call in a session of its own, as a command has: a round on new connections.
  const inSession = async <T>(fn: (s: ClusterSession) => Promise<T>): Promise<T> => {
    const session = openClusterSession(config, [spiderIni]);
    try {
      return await fn(session);
    } finally {
      await session.close();
    }
  };
  const res = await inSession((s) => runSchedule({ config, logger }, s, { backupId: 'bench-1' }));
  await cluster.waitReplicated();
  const round = await time(5, () => inSession((s) => pollOnce(config, s, res.set, 'bench-1', 1)));
  console.log(
    `one --wait round over ${res.tasks} tasks (${res.set.slaves.length} slaves read directly): median ${round.toFixed(1)} ms of 5`,
  );
  const query = await time(5, () => inSession((s) => queryTasks(config, s, {})));
  console.log(`one query over ${res.tasks} tasks: median ${query.toFixed(1)} ms of 5`);

  // Many replicas: `endpoints` TCP forwarders (with latency) in front of one real replica, each a distinct Host:Port.
  const slave = cluster.slaves[0];
  if (!slave) throw new Error('no slave');
  // A round keeps one connection per replica until it ends: here they all land on this one.
  await cluster.exec(slave, 'SET GLOBAL max_connections = ?', [endpoints + 100]);
  const servers: ServerRow[] = [];
  for (let i = 0; i < endpoints; i++) {
    const server = net.createServer((c) => {
      const up = net.connect(slave.port, '127.0.0.1');
      const delayed = (to: net.Socket) => (chunk: Buffer) => setTimeout(() => to.write(chunk), latencyMs);
      c.on('data', delayed(up));
      up.on('data', delayed(c));
      c.on('close', () => up.destroy());
      up.on('close', () => c.destroy());
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    proxies.push(server);
    servers.push({
      serverName: `SPT_SLAVE${i}`,
      host: '127.0.0.1',
      port: (server.address() as net.AddressInfo).port,
      user: ADMIN_USER,
      password: ADMIN_PASSWORD,
      wrapper: 'mysql_slave',
    });
  }
  for (const c of [16, 64, 1]) {
    const ms = await time(1, async () => {
      const reads = await readSlaveTasks(servers, 'bench-1', c, {});
      const errors = reads.filter((r) => r.error).length;
      if (errors) throw new Error(`${errors} reads failed`);
    });
    console.log(`replica read round over ${endpoints} endpoints (${latencyMs} ms one-way latency), concurrency ${c}: ${ms.toFixed(0)} ms`);
  }
} finally {
  for (const p of proxies) p.close();
  ws.close();
  await cluster.close();
}
