// `schedule` and one `schedule --wait` round at 16 / 128 / 1,024 shards, and `status --cluster` at
// the largest.
//
// A thousand real instances do not fit on one machine, so every shard master and every replica is
// a TCP forwarder (in a process of its own, optionally delaying every chunk) in front of one of a
// few real instances, on an address of its own (127.1.x.y for masters, 127.2.x.y for replicas, one
// port of SPIDERBACKUP_TEST_PORTS). The Spider node routes to the forwarders: SPT<n> points at master forwarder
// n and the Spider table is partitioned MOD <shards>. Because several partitions share one real
// master, partition n is stored in an updatable view (`gb_p<n>`: the rows of global_backup with
// ShardValue MOD <shards> = n) rather than in the table itself: else every partition on a real
// master would also read the rows of the others. Replica rows arrive in global_backup on the real
// replicas by replication, as usual.
//
// `status --cluster` reads each instance's own rows, keyed by its Host:Port (the forwarder's
// address): every instance gets its agent's presence, a month of successes and some a running
// backup, named after its address, and the JSON output is checked to show each instance exactly
// its own (a read through forwarder X returning the rows of the 255 others on X's real instance
// would be measured as duplicates). Statements per instance are the real instances' `Questions`.
//
//   npm run build && node dist/bench/scale.js [--shards 16,128,1024] [--real 4] [--latency 0] [--runs 3] [--before DIR]
//     [--only schedule,status] [--keep]
//
// --keep: after the status part, keep everything up (until SIGINT) and print the command lines, for profiling.
// --before DIR: the dist/ directory of an older build measured the same way, e.g.
//   git archive <commit> | tar -x -C /tmp/old && ln -s $PWD/node_modules /tmp/old/ && (cd /tmp/old && npx tsc)
//   node dist/bench/scale.js --before /tmp/old/dist
// --latency MS: one-way delay added to every forwarded chunk (loopback has none; 1 ms is a slow LAN).
// --via direct|forwarders: without latency (the default), each real instance listens itself on the
//   addresses of the instances it stands for (MariaDB ≥ 10.11 binds a list), so no forwarder's CPU
//   shares the two cores with the command; with --latency, forwarders (in a process of their own).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { loadAgentConfig, type AgentConfig } from '../src/config/agent.js';
import type { TaskSet } from '../src/cluster/task-set.js';
import { createLogger } from '../src/log.js';
import { createPresenceTable, createSpiderTable } from '../src/sql/ddl.js';
import { upsertPresence, type Presence } from '../src/sql/presence.js';
import type { ServerRow } from '../src/sql/servers.js';
import { insertTaskRows, type NewTaskRow } from '../src/sql/tasks.js';
import { ADMIN_PASSWORD, ADMIN_USER, startCluster, type Cluster, type Instance } from '../src/sandbox/cluster.js';
import { Workspace } from '../test/support/workspace.js';
import type { ForwardedEndpoint as Ep, Reply, Request } from './forwarders.js';
import { cpuMs } from './lib/proc.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    shards: { type: 'string', default: '16,128,1024' },
    real: { type: 'string', default: '4' },
    latency: { type: 'string', default: '0' },
    runs: { type: 'string', default: '3' },
    before: { type: 'string' },
    /** `schedule` (the --wait table and insert shapes) and/or `status` (status --cluster at the largest scale). */
    only: { type: 'string', default: 'schedule,status' },
    /** After the status part: keep the cluster up until SIGINT, for profiling by hand (prints the command). */
    keep: { type: 'boolean', default: false },
    via: { type: 'string' },
  },
});
const parts = new Set((args.only ?? '').split(',').map((s) => s.trim()));
const scales = (args.shards ?? '').split(',').map(Number);
const real = Number(args.real);
const latencyMs = Number(args.latency);
const runs = Number(args.runs);
const maxShards = Math.max(...scales);
const via = args.via ?? (latencyMs > 0 ? 'forwarders' : 'direct');
if (via !== 'direct' && via !== 'forwarders') throw new Error(`--via: direct or forwarders, not ${via}`);
if (via === 'direct' && latencyMs > 0) throw new Error('--latency needs --via forwarders');
/** The address of endpoint `i` of a kind (net 1: masters, 2: replicas); .0 and .255 avoided. */
const addressOf = (net: number, i: number) => `127.${net}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const { logger } = createLogger({ level: 'warn', fd: 2 });

interface Round {
  counts: { total: number; unknown: number };
  errors: string[];
}
interface Scheduled {
  set: TaskSet;
}
/**
 * `schedule --wait` as a build runs it in process: the schedule, then rounds on the same kept
 * connections (a build from before kept connections opens new ones every time).
 */
interface Run {
  schedule(id: string): Promise<Scheduled>;
  round(set: TaskSet, id: string, n: number): Promise<Round>;
  /** Each side of a round alone. */
  masterSide(id: string): Promise<unknown[]>;
  replicas(set: TaskSet, id: string): Promise<{ error?: string }[]>;
  close(): Promise<void>;
}
interface Impl {
  name: string;
  cli: string;
  open(config: AgentConfig, spiderIni: string): Run;
}

/** The kept connections of a build, as the runs use them (`ClusterPool` before the cluster session). */
interface Pool {
  use<T>(ep: unknown, fn: (c: unknown) => Promise<T>, opts?: { init?: (c: unknown) => Promise<void> }): Promise<T>;
  close(): Promise<void>;
}
type ListMasterSide = (c: unknown, id: string) => Promise<unknown[]>;
type ReadSlaveTasks = (slaves: ServerRow[], id: string, concurrency: number, pool?: Pool) => Promise<{ error?: string }[]>;

async function loadImpl(name: string, dist: string): Promise<Impl> {
  // An older build may predate the layout by capability (src/core/, src/db.js): the first path it has.
  const has = (p: string) => existsSync(join(dist, p));
  const load = async <T>(...paths: string[]) => {
    const p = paths.find(has) ?? (paths[0] as string);
    return (await import(pathToFileURL(join(dist, p)).href)) as T;
  };
  const cli = join(dist, 'src/bin/cli.js');
  const { listMasterSideTasks } = await load<{ listMasterSideTasks: ListMasterSide }>('src/sql/tasks.js');
  if (has('src/cluster/session.js')) return { name, cli, open: await sessionRun(load, listMasterSideTasks) };
  return { name, cli, open: await poolRun(load, has, listMasterSideTasks) };
}

type Load = <T>(...paths: string[]) => Promise<T>;

/** A build with the cluster session: the session keeps the connections. */
async function sessionRun(load: Load, listMasterSideTasks: ListMasterSide): Promise<Impl['open']> {
  type Session = { connections: Pool; spider: unknown; close(): Promise<void> };
  const { openClusterSession } = await load<{ openClusterSession: (config: AgentConfig, files: string[]) => Session }>(
    'src/cluster/session.js',
  );
  const { runSchedule } = await load<{
    runSchedule(deps: { config: AgentConfig; logger: unknown }, s: Session, opts: { backupId: string }): Promise<Scheduled>;
  }>('src/cluster/schedule.js');
  const { pollOnce } = await load<{
    pollOnce(config: AgentConfig, s: Session, set: TaskSet, id: string, n: number, lockless: unknown): Promise<Round>;
  }>('src/cluster/wait.js');
  const reach = await load<{ readSlaveTasks: ReadSlaveTasks; initSpiderReadSession: (c: unknown) => Promise<void> }>(
    'src/cluster/reach.js',
  );
  return (config, spiderIni) => {
    const session = openClusterSession(config, [spiderIni]);
    return {
      schedule: (id) => runSchedule({ config, logger }, session, { backupId: id }),
      round: (set, id, n) => pollOnce(config, session, set, id, n, new Map()),
      masterSide: (id) => session.connections.use(session.spider, (c) => listMasterSideTasks(c, id), { init: reach.initSpiderReadSession }),
      replicas: (set, id) => reach.readSlaveTasks(set.slaves, id, config.schedule.waitConcurrency, session.connections),
      close: () => session.close(),
    };
  };
}

/** A build from before the cluster session: its own pool (if it has one) passed along; older ones ignore it. */
async function poolRun(load: Load, has: (p: string) => boolean, listMasterSideTasks: ListMasterSide): Promise<Impl['open']> {
  interface Target {
    spider: unknown;
  }
  const { runSchedule } = await load<{
    runSchedule(
      deps: { config: AgentConfig; logger: unknown; pool?: Pool },
      opts: { files: string[]; backupId: string },
    ): Promise<Scheduled & { target: Target }>;
  }>('src/cluster/schedule.js', 'src/core/schedule.js');
  const { pollOnce } = await load<{
    pollOnce(config: AgentConfig, target: Target, set: TaskSet, id: string, n: number, lockless: unknown, pool?: Pool): Promise<Round>;
  }>('src/cluster/wait.js', 'src/core/wait.js');
  const view = await load<{ readSlaveTasks: ReadSlaveTasks; initSpiderReadSession?: (c: unknown) => Promise<void> }>(
    'src/cluster/view.js',
    'src/core/cluster-view.js',
  );
  const db = await load<{ withConnection: <T>(ep: unknown, fn: (c: unknown) => Promise<T>) => Promise<T> }>(
    'src/db/connect.js',
    'src/db.js',
  );
  const poolPath = ['src/db/pool.js', 'src/core/pool.js'].find(has);
  const ClusterPool = poolPath ? (await load<{ ClusterPool: new () => Pool }>(poolPath)).ClusterPool : undefined;
  const init = view.initSpiderReadSession;
  return (config, spiderIni) => {
    const pool = ClusterPool ? new ClusterPool() : undefined;
    let target: Target | undefined;
    const spider = () => (target as Target).spider;
    return {
      schedule: async (id) => {
        const res = await runSchedule({ config, logger, ...(pool ? { pool } : {}) }, { files: [spiderIni], backupId: id });
        if ((res as { kind?: string }).kind !== 'scheduled') throw new Error('not scheduled: not the primary spider node?');
        target = res.target;
        return res;
      },
      round: (set, id, n) => pollOnce(config, target as Target, set, id, n, new Map(), pool),
      // Without kept connections the master side is read on a new connection every round.
      masterSide: (id) =>
        init && pool
          ? pool.use(spider(), (c) => listMasterSideTasks(c, id), { init })
          : db.withConnection(spider(), (c) => listMasterSideTasks(c, id)),
      replicas: (set, id) => view.readSlaveTasks(set.slaves, id, config.schedule.waitConcurrency, pool),
      close: async () => pool?.close(),
    };
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const v = await fn();
  return [performance.now() - t, v];
}

/** Where the bench's instances are reached, and how many connections they took. */
interface Endpoints {
  open(targets: Instance[], net: number, from: number, to: number): Promise<Ep[]>;
  /** Connections taken by the masters (from 0) or the replicas (from maxShards). */
  accepted(from: number, n: number): Promise<number>;
  /** Per endpoint, when they can be told apart (forwarders only). */
  acceptedEach(): Promise<number[] | undefined>;
  /** The forwarders' process, whose CPU shares the cores; none when direct. */
  readonly pid: number | undefined;
  close(): void;
}

class Forwarders implements Endpoints {
  private readonly child: ChildProcess;
  constructor() {
    this.child = fork(join(here, 'forwarders.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  }
  private ask(req: Request): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.child.once('message', (r: Reply) => (r.kind === 'error' ? reject(new Error(r.message)) : resolve(r)));
      this.child.send(req);
    });
  }
  async open(to: Instance[], net: number, from: number, last: number): Promise<Ep[]> {
    const targets = [...Array(maxShards).keys()].map((i) => (to[i % real] as Instance).port);
    const r = await this.ask({ kind: 'open', targets, net, latencyMs, from, to: last });
    if (r.kind !== 'opened') throw new Error('forwarders: unexpected reply');
    return r.endpoints;
  }
  /** Connections accepted by forwarders [from, from + n). */
  async accepted(from: number, n: number): Promise<number> {
    const r = await this.ask({ kind: 'stats' });
    if (r.kind !== 'stats') throw new Error('forwarders: unexpected reply');
    return r.accepted.slice(from, from + n).reduce((a, b) => a + b, 0);
  }
  /** Connections accepted so far by each forwarder, in the order they were opened. */
  async acceptedEach(): Promise<number[]> {
    const r = await this.ask({ kind: 'stats' });
    if (r.kind !== 'stats') throw new Error('forwarders: unexpected reply');
    return r.accepted;
  }
  get pid(): number | undefined {
    return this.child.pid;
  }
  close(): void {
    this.child.kill('SIGKILL');
  }
}

/**
 * Each real instance answers for its endpoints itself: it listens on their addresses
 * (startCluster's listenAlso), on its own port. Connections are the real instances' own
 * `Connections` counter (each read of it is one more, subtracted).
 */
class Direct implements Endpoints {
  readonly pid = undefined;
  constructor(private readonly cluster: Cluster) {}
  open(to: Instance[], net: number): Promise<Ep[]> {
    return Promise.resolve([...Array(maxShards).keys()].map((i) => ({ host: addressOf(net, i), port: (to[i % real] as Instance).port })));
  }
  async accepted(from: number): Promise<number> {
    const list = from === 0 ? this.cluster.masters : this.cluster.slaves;
    let n = 0;
    for (const i of list) {
      const [row] = await this.cluster.query<{ Value: string }>(i, "SHOW GLOBAL STATUS LIKE 'Connections'");
      n += Number(row?.Value ?? 0) - 1;
    }
    return n;
  }
  acceptedEach(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
  close(): void {}
}

/** The addresses real instance `k` of a kind answers on, direct: those of endpoints k, k + real, … */
function listenAlso(inst: { role: 'master' | 'slave'; shardValue: number }): string[] {
  if (via !== 'direct') return [];
  const net = inst.role === 'master' ? 1 : 2;
  return [...Array(maxShards).keys()].filter((i) => i % real === inst.shardValue).map((i) => addressOf(net, i));
}

/** Root over the unix socket, one connection for a whole set-up step. */
async function asRoot<T>(inst: Instance, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const c = await mysql.createConnection({ socketPath: inst.socket, user: 'root' });
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * Points the Spider node and tdbctl's mysql.servers at the first `shards` forwarders of each kind,
 * with an empty task table. Returns how long the first statement through the new Spider table took.
 */
async function configure(cluster: Cluster, shards: number, masterEps: Ep[], replicaEps: Ep[]): Promise<number> {
  const server = (name: string, wrapper: string, { host, port }: Ep) => [
    name,
    host,
    'infodba_schema',
    ADMIN_USER,
    ADMIN_PASSWORD,
    port,
    wrapper,
  ];
  const masters = masterEps.slice(0, shards).map((p, i) => server(`SPT${i}`, 'mysql', p));
  const replicas = replicaEps.slice(0, shards).map((p, i) => server(`SPT_SLAVE${i}`, 'mysql_slave', p));
  const servers = async (c: mysql.Connection, list: unknown[][]) => {
    await c.query("DELETE FROM mysql.servers WHERE Server_name LIKE 'SPT%'");
    await c.query('INSERT INTO mysql.servers (Server_name, Host, Db, Username, Password, Port, Wrapper) VALUES ?', [list]);
    await c.query('FLUSH PRIVILEGES'); // reloads the servers cache Spider reads
  };
  await asRoot(cluster.tdbctlNode as Instance, (c) => servers(c, [...masters, ...replicas]));
  for (const [r, m] of cluster.masters.entries()) {
    await asRoot(m, async (c) => {
      await c.query('DELETE FROM infodba_schema.global_backup');
      for (let i = r; i < shards; i += real) {
        await c.query(
          `CREATE OR REPLACE VIEW infodba_schema.gb_p${i} AS ` +
            `SELECT * FROM infodba_schema.global_backup WHERE ShardValue MOD ${shards} = ${i}`,
        );
      }
    });
  }
  await asRoot(cluster.spider, async (c) => {
    await c.query('DROP TABLE IF EXISTS infodba_schema.global_backup');
    await servers(c, masters);
    await c.query(createSpiderTable(shards, false).replace(/table "global_backup", server "SPT(\d+)"/g, 'table "gb_p$1", server "SPT$1"'));
  });
  await cluster.waitReplicated();
  // Spider connects to every shard the first time a table is opened (statistics), once.
  return (
    await timed(() =>
      asRoot(cluster.spider, (c) =>
        c.query('SELECT COUNT(*) FROM infodba_schema.global_backup WHERE BackupId = ? AND ShardValue = 0', ['x']),
      ),
    )
  )[0];
}

function cli(impl: Impl, agentIni: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [impl.cli, '--agent-config', agentIni, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${impl.name} cli exit ${code}: ${err.slice(-500)}`))));
  });
}

interface Row {
  shards: number;
  build: string;
  schedule: number;
  scheduleCli: number;
  /** Master connections (through the forwarders) a schedule opened, the Spider node's included. */
  scheduleMasterConns: number;
  firstRound: number;
  laterRounds: number;
  masterSide: number;
  replicas: number;
  replicaConns: number;
}

async function measure(impl: Impl, shards: number, config: AgentConfig, ws: Workspace, spiderIni: string, cluster: Cluster, fw: Endpoints) {
  const sched: number[] = [];
  const schedCli: number[] = [];
  const first: number[] = [];
  const later: number[] = [];
  const masterSide: number[] = [];
  const replicas: number[] = [];
  let scheduleMasterConns = 0;
  let replicaConns = 0;
  let tasks: NewTaskRow[] = [];
  for (let r = 1; r <= runs; r++) {
    // As `schedule --wait` runs: the rounds share the schedule's connections (the spider session included).
    const id = `w-${shards}-${impl.name}-${r}`;
    const run = impl.open(config, spiderIni);
    try {
      const conns0 = await fw.accepted(0, maxShards);
      const [ms, res] = await timed(() => run.schedule(id));
      sched.push(ms);
      scheduleMasterConns += (await fw.accepted(0, maxShards)) - conns0;
      tasks = res.set.tasks;
      await cluster.waitReplicated();
      const check = (round: Round) => {
        if (round.errors.length) throw new Error(`${impl.name}: round errors: ${round.errors.slice(0, 3).join('; ')}`);
        if (round.counts.unknown) throw new Error(`${impl.name}: ${round.counts.unknown} tasks not read`);
      };
      const round = async (n: number) => (await timed(async () => check(await run.round(res.set, id, n))))[0];
      const replicaConns0 = await fw.accepted(maxShards, maxShards);
      first.push(await round(1));
      for (let n = 2; n <= 4; n++) later.push(await round(n));
      replicaConns += (await fw.accepted(maxShards, maxShards)) - replicaConns0;
      // Each side alone, as in a later round.
      masterSide.push((await timed(() => run.masterSide(id)))[0]);
      replicas.push((await timed(() => run.replicas(res.set, id)))[0]);
    } finally {
      await run.close();
    }
  }
  for (let r = 1; r <= runs; r++) {
    const id = `c-${shards}-${impl.name}-${r}`;
    schedCli.push((await timed(() => cli(impl, ws.agentIni, ['schedule', '-c', spiderIni, '--backup-id', id])))[0]);
  }
  const row: Row = {
    shards,
    build: impl.name,
    schedule: median(sched),
    scheduleCli: median(schedCli),
    scheduleMasterConns: Math.round(scheduleMasterConns / runs),
    firstRound: median(first),
    laterRounds: median(later),
    masterSide: median(masterSide),
    replicas: median(replicas),
    replicaConns: Math.round(replicaConns / runs),
  };
  return { row, tasks };
}

const HISTORY_PER_INSTANCE = 10;
const RUNNING_EVERY = 8;
const ownId = (kind: string, ep: Ep) => `${kind}-${ep.host}-${ep.port}`;

/**
 * What `status --cluster` reads of each forwarded instance, stored as that instance's own rows:
 * every row is keyed by the forwarder's Host:Port (the address mysql.servers gives), so a read
 * through forwarder X returns X's rows and none of the 255 others sharing its real instance. Each
 * instance gets an agent's presence (a master's on the master, a replica's on the replica outside
 * its binlog, as the agent writes them), a month of successes with the newest named after its port,
 * and every RUNNING_EVERY-th a running backup.
 */
async function seedOwnRows(cluster: Cluster, shards: number, masterEps: Ep[], replicaEps: Ep[]): Promise<string> {
  const presence = (ep: Ep, shard: number, role: string): Presence => ({
    host: ep.host,
    port: ep.port,
    shardValue: shard,
    role,
    agentVersion: '0.1.0',
    agentHost: ownId('agent', ep),
    agentPid: ep.port,
    // A minute's tick: lost after 3 minutes, so a run slowed by a loaded machine still finds every agent alive.
    tickIntervalMs: 60_000,
    paused: false,
    pauseReason: '',
    pauseUntil: '',
    runningBackupId: shard % RUNNING_EVERY === 0 ? ownId('run', ep) : '',
    runningSince: '',
    runningBytes: shard % RUNNING_EVERY === 0 ? 1_000_000 + shard : null,
  });
  let rows = 0;
  for (const [r, m] of cluster.masters.entries()) {
    const mine = [...Array(shards).keys()].filter((i) => i % real === r);
    const epOf = (i: number, slave: boolean) => (slave ? replicaEps : masterEps)[i] as Ep;
    const task = (i: number, slave: boolean, backupId: string, status: string): NewTaskRow => ({
      serverName: slave ? `SPT_SLAVE${i}` : `SPT${i}`,
      wrapper: slave ? 'mysql_slave' : 'mysql',
      host: epOf(i, slave).host,
      port: epOf(i, slave).port,
      shardValue: i,
      backupId,
      status,
    });
    const both = (fn: (i: number, slave: boolean) => NewTaskRow[]) => mine.flatMap((i) => [...fn(i, false), ...fn(i, true)]);
    const history = both((i, slave) =>
      [...Array(HISTORY_PER_INSTANCE - 1).keys()].map((k) => task(i, slave, ownId(`h${k}`, epOf(i, slave)), 'success')),
    );
    const newest = both((i, slave) => [
      task(i, slave, ownId('ok', epOf(i, slave)), 'success'),
      ...(i % RUNNING_EVERY === 0 ? [task(i, slave, ownId('run', epOf(i, slave)), 'running')] : []),
    ]);
    await asRoot(m, async (c) => {
      await c.query(createPresenceTable());
      await insertTaskRows(c, history);
      // Older successes: a month of nightly backups, so "last success" has rows to pass over.
      await c.query(
        "UPDATE infodba_schema.global_backup SET CreatedAt = NOW() - INTERVAL (1 + CAST(SUBSTRING(BackupId, 2, 1) AS UNSIGNED)) DAY, UpdatedAt = CreatedAt + INTERVAL 1 HOUR WHERE BackupId LIKE 'h%'",
      );
      await insertTaskRows(c, newest);
      for (const i of mine) await upsertPresence(c, presence(masterEps[i] as Ep, i, 'master'));
    });
    rows += history.length + newest.length;
  }
  await cluster.waitReplicated();
  for (const [r, s] of cluster.slaves.entries()) {
    await asRoot(s, async (c) => {
      await c.query('SET SESSION sql_log_bin = 0');
      for (let i = r; i < shards; i += real) await upsertPresence(c, presence(replicaEps[i] as Ep, i, 'slave'));
    });
  }
  await asRoot(cluster.spider, async (c) => {
    await c.query(createPresenceTable());
    await upsertPresence(c, presence(cluster.spider, 0, 'spider'));
  });
  return `${HISTORY_PER_INSTANCE} successes per instance, a running backup on every ${RUNNING_EVERY}th, ${rows} task rows, a presence each`;
}

/** Every presence ticks again (the agents are alive): one statement per real instance. */
async function tick(cluster: Cluster): Promise<void> {
  const touch = 'UPDATE infodba_schema.spiderbackup_presence SET LastTick = NOW()';
  for (const m of [...cluster.masters, cluster.spider]) await asRoot(m, (c) => c.query(touch));
  await cluster.waitReplicated();
  for (const s of cluster.slaves)
    await asRoot(s, async (c) => {
      await c.query('SET SESSION sql_log_bin = 0');
      await c.query(touch);
    });
}

interface Shown {
  serverName: string;
  role: string;
  host: string;
  port: number;
  agent: { state: string; agentHost?: string };
  running?: { backupId: string };
  lastSuccess?: { backupId: string };
}

/** How many shard masters and replicas show exactly their own rows (presence, running, last success). */
function ownRows(instances: Shown[]): { own: number; of: number; wrong: string[] } {
  const members = instances.filter((i) => i.role !== 'spider');
  const wrong: string[] = [];
  for (const i of members) {
    const shard = Number(/(\d+)$/.exec(i.serverName)?.[1]);
    const want = {
      agent: ownId('agent', i),
      ok: ownId('ok', i),
      run: shard % RUNNING_EVERY === 0 ? ownId('run', i) : undefined,
    };
    const got = { agent: i.agent.agentHost, ok: i.lastSuccess?.backupId, run: i.running?.backupId };
    if (i.agent.state !== 'alive' || got.agent !== want.agent || got.ok !== want.ok || got.run !== want.run)
      wrong.push(`${i.serverName} ${i.host}:${i.port} ${JSON.stringify(got)}`);
  }
  return { own: members.length - wrong.length, of: members.length, wrong };
}

async function questions(cluster: Cluster): Promise<number> {
  let n = 0;
  for (const i of [...cluster.masters, ...cluster.slaves]) {
    const [row] = await cluster.query<{ Value: string }>(i, "SHOW GLOBAL STATUS LIKE 'Questions'");
    n += Number(row?.Value ?? 0);
  }
  return n;
}

/** One `status --cluster` process: wall time, peak RSS and CPU (GNU time), exit code and stdout. */
function statusCli(
  impl: Impl,
  agentIni: string,
  spiderIni: string,
  json: boolean,
): Promise<{ ms: number; kib: number; cpuMs: number; code: number | null; out: string }> {
  const rss = join(os.tmpdir(), `scale-rss-${process.pid}`);
  const t = performance.now();
  const child = spawn(
    '/usr/bin/time',
    [
      '-f',
      '%M %U %S',
      '-o',
      rss,
      process.execPath,
      impl.cli,
      '--agent-config',
      agentIni,
      'status',
      '--cluster',
      '-c',
      spiderIni,
      ...(json ? ['--format', 'json'] : []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) =>
    child.on('close', (code) => {
      const ms = performance.now() - t;
      if (code !== 0) return reject(new Error(`${impl.name} status --cluster exit ${code}: ${err.slice(-500)}`));
      const [kib, user, sys] = (readFileSync(rss, 'utf8').trim().split('\n').pop() ?? '').split(' ').map(Number);
      resolve({ ms, kib: kib as number, cpuMs: ((user as number) + (sys as number)) * 1000, code, out });
    }),
  );
}

const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** `status --cluster` as an operator runs it (text), `runs` times; then once as JSON, checked and counted. */
async function measureStatus(impl: Impl, cluster: Cluster, fw: Endpoints, ws: Workspace, spiderIni: string): Promise<void> {
  const ms: number[] = [];
  const kib: number[] = [];
  const cli: number[] = [];
  const servers: number[] = [];
  const forwarders: number[] = [];
  // What the machine's two cores spent besides the command: the real instances and the forwarders.
  const pids = [...cluster.masters, ...cluster.slaves, cluster.spider].map((i) => cluster.pidOf(i) as number);
  const cpuOf = (list: number[]) => list.reduce((a, p) => a + cpuMs(p), 0);
  for (let r = 0; r < runs; r++) {
    await tick(cluster);
    const fwPids = fw.pid === undefined ? [] : [fw.pid];
    const s0 = cpuOf(pids);
    const f0 = cpuOf(fwPids);
    const run = await statusCli(impl, ws.agentIni, spiderIni, false);
    servers.push(cpuOf(pids) - s0);
    forwarders.push(cpuOf(fwPids) - f0);
    ms.push(run.ms);
    kib.push(run.kib);
    cli.push(run.cpuMs);
  }
  await tick(cluster);
  const conns0 = await fw.acceptedEach();
  const total0 = (await fw.accepted(0, maxShards)) + (await fw.accepted(maxShards, maxShards));
  const q0 = await questions(cluster);
  const json = await statusCli(impl, ws.agentIni, spiderIni, true);
  const q1 = await questions(cluster);
  // Direct, the counters also count the bench's own reads in between (questions: 8 connections each time).
  const total = (await fw.accepted(0, maxShards)) + (await fw.accepted(maxShards, maxShards)) - total0 - 16;
  const each = await fw.acceptedEach();
  const conns = each && conns0 ? each.map((n, i) => n - (conns0[i] ?? 0)) : undefined;
  const instances = (JSON.parse(json.out) as { instances: Shown[] }).instances;
  const own = ownRows(instances);
  const members = own.of;
  // The questions read above (8 per call) and, direct, the reads of Connections (16), not the command's.
  const statements = (q1 - q0 - 8 - (each ? 0 : 16)) / members;
  const line = [
    `${impl.name}: ${ms.map((m) => `${(m / 1000).toFixed(2)} s`).join(', ')} (median ${(median(ms) / 1000).toFixed(2)} s); ` +
      `peak RSS ${(Math.max(...kib) / 1024).toFixed(0)} MiB; JSON run ${(json.ms / 1000).toFixed(2)} s`,
    `  ${own.own} of ${own.of} shard masters and replicas show their own rows (presence, running, last success)` +
      (own.wrong.length ? `; not: ${own.wrong.slice(0, 3).join('; ')}` : ''),
    `  CPU (medians): the command ${sec(median(cli))}, the real instances ${sec(median(servers))}` +
      (fw.pid === undefined ? ' (no forwarders)' : `, the forwarders ${sec(median(forwarders))}`),
    `  per instance: ${statements.toFixed(2)} statements, connections ` +
      (conns ? `${Math.min(...conns)}–${Math.max(...conns)} (${conns.reduce((a, b) => a + b, 0)} in all)` : `${total} in all`),
  ];
  console.log(line.join('\n'));
  console.log(
    JSON.stringify({
      what: `status --cluster, ${maxShards} shards + ${maxShards} replicas (${impl.name}; whole CLI, median of ${runs}; its CPU; peak RSS)`,
      now: `${sec(median(ms))}; CPU ${sec(median(cli))}; ${(Math.max(...kib) / 1024).toFixed(0)} MiB; ${own.own}/${own.of} own rows`,
      target: '≤ 3 s',
    }),
  );
  if (own.wrong.length) throw new Error(`status --cluster showed rows not the instance's own: ${own.wrong.slice(0, 3).join('; ')}`);
}

/** One multi-row INSERT of a task set through Spider against the same rows in batches. */
async function insertShapes(cluster: Cluster, tasks: NewTaskRow[]): Promise<string[]> {
  const session = () =>
    mysql.createConnection({ host: cluster.spider.host, port: cluster.spider.port, user: ADMIN_USER, password: ADMIN_PASSWORD });
  const as = (id: string, rows: NewTaskRow[]) => rows.map((t) => ({ ...t, backupId: id }));
  const blocks = (rows: NewTaskRow[], n: number) => {
    const shards = Math.max(...rows.map((t) => t.shardValue)) + 1;
    return [...Array(n).keys()].map((b) => rows.filter((t) => Math.floor((t.shardValue * n) / shards) === b));
  };
  const out: string[] = [];
  let attempt = 0;
  const one = async (label: string, fn: (id: string) => Promise<unknown>) => {
    const ms: number[] = [];
    for (let r = 0; r < runs; r++) ms.push((await timed(() => fn(`i-${++attempt}`)))[0]);
    out.push(`${label}: ${(median(ms) / 1000).toFixed(2)} s`);
  };
  await one('one INSERT of every row', async (id) => {
    const c = await session();
    await insertTaskRows(c, as(id, tasks)).finally(() => c.end());
  });
  await one('4 INSERTs one after another (a quarter of the shards each)', async (id) => {
    const c = await session();
    try {
      for (const b of blocks(tasks, 4)) await insertTaskRows(c, as(id, b));
    } finally {
      await c.end();
    }
  });
  await one('4 INSERTs at once on 4 sessions', (id) =>
    Promise.all(
      blocks(tasks, 4).map(async (b) => {
        const c = await session();
        await insertTaskRows(c, as(id, b)).finally(() => c.end());
      }),
    ),
  );
  return out;
}

async function main(): Promise<void> {
  const impls = [await loadImpl('after', resolve(here, '..'))];
  if (args.before) impls.unshift(await loadImpl('before', resolve(args.before)));
  const t0 = performance.now();
  const cluster = await startCluster({ shards: real, slaves: [...Array(real).keys()], tdbctl: true, listenAlso });
  const fw: Endpoints = via === 'direct' ? new Direct(cluster) : new Forwarders();
  const ws = new Workspace();
  try {
    for (const i of [...cluster.masters, ...cluster.slaves]) {
      // Each real instance stands for a quarter of the cluster: Spider and the kept replica connections add up.
      await cluster.exec(i, 'SET GLOBAL max_connections = 5000');
    }
    const range = cluster.ports.data.reduce((a, b) => (b.max - b.min > a.max - a.min ? b : a));
    // Masters on 127.1.x.y, replicas on 127.2.x.y: an address each, like the hosts of a real cluster.
    const forward = (to: Instance[], net: number) => fw.open(to, net, range.min, range.max);
    const masterEps = await forward(cluster.masters, 1);
    const replicaEps = await forward(cluster.slaves, 2);
    const [version] = await cluster.query<{ v: string }>(cluster.spider, 'SELECT VERSION() AS v');
    const spiderIni = cluster.writeInstanceIni(ws.confDir, cluster.spider);
    const config = loadAgentConfig(ws.agentIni);
    const head = [
      `machine: ${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, Node ${process.version}, MariaDB ${version?.v ?? '?'}`,
      via === 'direct'
        ? `endpoints: every shard master and every replica has an address of its own (127.1.x.y / 127.2.x.y), on which one of ` +
          `${real} real masters / ${real} real replicas listens itself (no forwarder); the spider node and the tdbctl stand-in are real`
        : `endpoints: every shard master and every replica is a TCP forwarder on an address of its own (127.1.x.y / 127.2.x.y; ` +
          `${latencyMs} ms one-way delay per chunk) in front of ` +
          `one of ${real} real masters / ${real} real replicas; the spider node and the tdbctl stand-in are real`,
      `[schedule] wait_concurrency ${config.schedule.waitConcurrency}; medians of ${runs} runs; ` +
        `set-up ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    ];
    console.log(head.join('\n'));
    if (parts.has('schedule')) {
      const rows: Row[] = [];
      const notes: string[] = [];
      let lastTasks: NewTaskRow[] = [];
      for (const shards of scales) {
        for (const impl of impls) {
          const open = await configure(cluster, shards, masterEps, replicaEps);
          if (impl === impls[0])
            notes.push(`${shards} shards: the first statement through a newly opened Spider table took ${(open / 1000).toFixed(2)} s`);
          const { row, tasks } = await measure(impl, shards, config, ws, spiderIni, cluster, fw);
          rows.push(row);
          lastTasks = tasks;
          process.stderr.write(`${JSON.stringify(row)}\n`);
        }
      }
      notes.push(...(await insertShapes(cluster, lastTasks)).map((l) => `${maxShards} shards, ${l}`));

      const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
      const table = [
        [
          'shards',
          'build',
          'schedule',
          'schedule CLI',
          'master conns',
          '--wait round 1',
          'round 2+',
          'master side',
          'replicas',
          'replica conns',
        ],
        ...rows.map((r) => [
          String(r.shards),
          r.build,
          s(r.schedule),
          s(r.scheduleCli),
          String(r.scheduleMasterConns),
          s(r.firstRound),
          s(r.laterRounds),
          s(r.masterSide),
          s(r.replicas),
          String(r.replicaConns),
        ]),
      ];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      console.log();
      for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join('  '));
      console.log(
        [
          '',
          'schedule: in-process runSchedule (the new build keeps its spider session open for the rounds);',
          'schedule CLI: the whole `spiderbackup schedule` process, Node start-up and closing included.',
          'master conns: connections to shard masters per schedule (through the forwarders), the Spider node’s included.',
          '--wait rounds as `schedule --wait` runs them, sharing the schedule’s pool: round 1 opens the replica connections;',
          'round 2+ is the median of rounds 2-4 of every run. master side / replicas: each side of a later round alone.',
          'replica conns: replica connections opened over rounds 1-4.',
          ...notes,
        ].join('\n'),
      );
      for (const r of rows.filter((r) => r.shards === maxShards))
        console.log(
          JSON.stringify({
            what: `schedule, ${maxShards} shards + ${maxShards} replicas (${r.build}; whole CLI, median of ${runs})`,
            now: s(r.scheduleCli),
            target: '≤ 3 s',
          }),
        );
    }
    if (parts.has('status')) {
      // At the largest scale; configured afresh unless the schedule part left it so.
      if (!parts.has('schedule') || scales[scales.length - 1] !== maxShards) await configure(cluster, maxShards, masterEps, replicaEps);
      const seeded = await seedOwnRows(cluster, maxShards, masterEps, replicaEps);
      console.log(`\nstatus --cluster at ${maxShards} shards + ${maxShards} replicas (${seeded})`);
      for (const impl of impls) await measureStatus(impl, cluster, fw, ws, spiderIni);
      if (args.keep) {
        await tick(cluster);
        process.stderr.write(
          `kept up; status --cluster: node ${impls.at(-1)?.cli} --agent-config ${ws.agentIni} status --cluster -c ${spiderIni}\n` +
            `schedule: … schedule -c ${spiderIni}; tick: kill -USR2 ${process.pid}; stop: kill -INT ${process.pid}\n`,
        );
        process.on('SIGUSR2', () => void tick(cluster));
        await new Promise((r) => process.once('SIGINT', r));
      }
    }
  } finally {
    fw.close();
    ws.close();
    await cluster.close();
  }
}

await main();
