// A real, throw-away TenDB-like topology on MariaDB 10.11 for integration tests:
//   masters[i]  - shard i (server SPT<i>), InnoDB task table
//   slaves      - replicas of chosen masters (server SPT_SLAVE<k>), fed by binlog replication
//   spiders     - Spider nodes routing the task table to the masters (servers SPIDER0, SPIDER1, …)
//   tdbctl      - optional control node: a backing mariadbd plus the TdbctlStandIn in front of it
// Everything lives in one private temp dir; a detached watchdog kills the servers and removes the
// dir should this process die without close(). Ports come from SPIDERBACKUP_TEST_PORTS (see
// ports.ts); every instance is on 127.0.0.1 unless options.hosts says otherwise.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isIPv4 } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import ini from 'ini';
import mysql from 'mysql2/promise';
import type { ResultSetHeader } from 'mysql2';
import { formatDuration } from '../format.js';
import { TDBCTL_PORT_OFFSET } from '../config/instance.js';
import { createLocalTable, createSchema, createSpiderTable } from '../sql/ddl.js';
import { installDatadir, MariadbServer, PortInUseError } from '../restore/mariadbd.js';
import { pickPort, portPlan, PORTS_ENV, type PortPlan } from './ports.js';
import { TdbctlStandIn } from './tdbctl-stand-in.js';

export { TdbctlStandIn } from './tdbctl-stand-in.js';

/** Every instance's address unless options.hosts says otherwise. */
export const HOST = '127.0.0.1';
/** Created on every master, the spider node and the tdbctl backing database; replicas get it by replication. */
export const ADMIN_USER = 'sbadmin';
export const ADMIN_PASSWORD = 'S3cret-pw!';
// The stand-in listens at spider port + TDBCTL_PORT_OFFSET, as tdbctl does next to its spider node.
export { TDBCTL_PORT_OFFSET };

const REPLICATION_TIMEOUT_MS = 30_000;
const PORT_ATTEMPTS = 3;

export type Role = 'master' | 'slave' | 'spider' | 'tdbctl';

/**
 * Which address each instance binds and is known by (mysql.servers / CREATE SERVER Host,
 * CHANGE MASTER, the instance ini's MysqlHost, port probing):
 * - 'single': 127.0.0.1 for all;
 * - 'distinct': 127.0.0.2, 127.0.0.3, … one each, in the order masters, replicas, spider;
 * - a function: the address it returns for each instance (an IPv4 address this machine has).
 * The tdbctl node (stand-in and backing database) always shares the spider node's address, as
 * tdbctl sits beside its spider node. Ports stay unique across the cluster whatever the addresses.
 */
export type HostPlan = 'single' | 'distinct' | HostOf;
export type HostOf = (inst: { name: string; role: Exclude<Role, 'tdbctl'>; shardValue: number }) => string;

export interface Instance {
  name: string;
  role: Role;
  host: string;
  /** TCP port clients use. For the tdbctl node: the stand-in's port (spider.port + 1000). */
  port: number;
  /** Unix socket of the mariadbd behind it (for tdbctl: the backing database). */
  socket: string;
  datadir: string;
  shardValue: number;
}

export interface ClusterOptions {
  /** Number of shards (masters); default 2. */
  shards?: number;
  /** Indexes of the masters that get one replica each; default [0]. */
  slaves?: number[];
  /**
   * Indexes (among `slaves`) of the masters whose replica runs with log_slave_updates ON: its
   * binlog then also holds what it applies. Default none (MariaDB's default, OFF).
   */
  logSlaveUpdates?: number[];
  /** Also start the tdbctl control node (backing mariadbd + stand-in); default false. */
  tdbctl?: boolean;
  /** Create infodba_schema.global_backup on masters (InnoDB) and spider (Spider); default true. */
  createTables?: boolean;
  /**
   * Bare instances, the target of a whole-cluster restore: the admin user everywhere and the Spider
   * plugin on the spider nodes, but no mysql.servers entries, no tables (createTables is ignored)
   * and replicas that do not replicate yet (masterOf still names the master each is meant for).
   */
  bare?: boolean;
  /** Addresses of the instances; default 'single' (127.0.0.1 for all). See HostPlan. */
  hosts?: HostPlan;
  /** Directory to hold everything (created; must not exist or be empty); default a new temp dir. */
  dir?: string;
  /** Number of Spider nodes (servers SPIDER0, SPIDER1, …, each routing to every shard); default 1. */
  spiders?: number;
  /**
   * SET GLOBAL spider_internal_xa on every Spider node: cross-shard commits become XA PREPARE /
   * XA COMMIT on the shards. Needs every shard on its own address (mysql.spider_xa_member's key
   * has no port: two shards on one address fail with 12606), so use with hosts 'distinct'.
   */
  spiderInternalXa?: boolean;
  /**
   * More addresses a shard master or replica listens on besides its own (same port): one real
   * server answering as many instances, each on an address of its own (bench/scale.ts).
   */
  listenAlso?: (inst: { name: string; role: 'master' | 'slave'; shardValue: number }) => string[];
}

export interface Cluster {
  /** Private temp dir holding everything; removed by close(). */
  dir: string;
  /** The port plan in force (from SPIDERBACKUP_TEST_PORTS or the default). */
  ports: PortPlan;
  /** masters[i] is server SPT<i> with shardValue i. */
  masters: Instance[];
  /** Replicas; the replica of masters[k] has shardValue k and is server SPT_SLAVE<k>. */
  slaves: Instance[];
  spider: Instance;
  /** Every Spider node; spiders[0] is `spider` (server SPIDER<k> is spiders[k]). */
  spiders: Instance[];
  /** The tdbctl stand-in, when options.tdbctl. */
  tdbctl?: TdbctlStandIn;
  /** The tdbctl node as an instance (role 'tdbctl', port of the stand-in), when options.tdbctl. */
  tdbctlNode?: Instance;
  /** masters, slaves, spider, and the tdbctl node if any. */
  all(): Instance[];
  /** The master a replica replicates from. */
  masterOf(slave: Instance): Instance;
  /** Runs SQL as root over the unix socket; `params` fill `?` placeholders. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ad-hoc SQL rows; callers that care name T
  query<T = any>(inst: Instance, sql: string, params?: unknown[]): Promise<T[]>;
  exec(inst: Instance, sql: string, params?: unknown[]): Promise<{ affectedRows: number }>;
  /** Waits until every replica has executed all its master has written so far. */
  waitReplicated(timeoutMs?: number): Promise<void>;
  /** The pid of the mariadbd of `inst` (for tdbctl: its backing database) while it runs. */
  pidOf(inst: Instance): number | undefined;
  /** Clean shutdown of one instance (for tdbctl: the stand-in and its backing database). */
  stop(inst: Instance): Promise<void>;
  /** Starts a stopped instance again on the same datadir and port; replicas resume replication. */
  start(inst: Instance): Promise<void>;
  /** Writes `dir`/dbbackup.<port>.ini in the old tool's format and returns its absolute path. */
  writeInstanceIni(dir: string, inst: Instance, extra?: Record<string, string>): string;
  /** Kills everything (stand-in included) and removes the temp dir; safe to call repeatedly. */
  close(): Promise<void>;
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const shards = opts.shards ?? 2;
  const slaves = [...new Set(opts.slaves ?? [0])].sort((a, b) => a - b);
  if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`shards must be a positive integer, got ${shards}`);
  const bad = slaves.find((k) => !Number.isInteger(k) || k < 0 || k >= shards);
  if (bad !== undefined) throw new RangeError(`slaves: no master with index ${bad}`);
  const logSlaveUpdates = [...new Set(opts.logSlaveUpdates ?? [])];
  const notSlave = logSlaveUpdates.find((k) => !slaves.includes(k));
  if (notSlave !== undefined) throw new RangeError(`logSlaveUpdates: master ${notSlave} has no replica`);
  if (opts.bare && opts.tdbctl) throw new RangeError('bare: a bare cluster has no tdbctl node');
  const ports = portPlan(process.env[PORTS_ENV], TDBCTL_PORT_OFFSET);
  const hostOf = hostChooser(opts.hosts ?? 'single');

  const cluster = new LocalCluster(await clusterDir(opts.dir), ports, hostOf, opts.listenAlso);
  try {
    const spiders = opts.spiders ?? 1;
    if (!Number.isInteger(spiders) || spiders < 1) throw new RangeError(`spiders must be a positive integer, got ${spiders}`);
    await cluster.boot({
      shards,
      slaves,
      logSlaveUpdates,
      tdbctl: opts.tdbctl ?? false,
      createTables: opts.createTables ?? true,
      spiders,
      spiderInternalXa: opts.spiderInternalXa ?? false,
      bare: opts.bare ?? false,
    });
    return cluster;
  } catch (err) {
    await cluster.close();
    throw err;
  }
}

async function clusterDir(dir: string | undefined): Promise<string> {
  if (dir === undefined) return mkdtemp(join(tmpdir(), 'sbit-'));
  const path = resolve(dir);
  await mkdir(path, { recursive: true });
  // close() deletes the whole dir: never adopt one holding something else.
  if ((await readdir(path)).length > 0) throw new Error(`cluster dir ${path} is not empty`);
  return path;
}

function hostChooser(plan: HostPlan): HostOf {
  if (plan === 'single') return () => HOST;
  if (plan === 'distinct') {
    let next = 2;
    return () => {
      if (next > 254) throw new RangeError('hosts: distinct: more than 253 instances');
      return `127.0.0.${next++}`;
    };
  }
  if (typeof plan === 'function') return plan;
  throw new RangeError(`hosts: expected 'single', 'distinct' or a function, got ${String(plan)}`);
}

interface Topology {
  shards: number;
  slaves: number[];
  logSlaveUpdates: number[];
  tdbctl: boolean;
  createTables: boolean;
  spiders: number;
  spiderInternalXa: boolean;
  bare: boolean;
}

/** A mysql.servers row as a TenDB node lists it. */
interface ServerEntry {
  name: string;
  wrapper: 'mysql' | 'mysql_slave' | 'SPIDER' | 'TDBCTL';
  host: string;
  port: number;
  database?: string;
}

const ROLE_IN_INI: Record<Role, string> = {
  master: 'master',
  slave: 'slave',
  spider: 'spider_master',
  tdbctl: 'spider_master',
};

class LocalCluster implements Cluster {
  masters: Instance[] = [];
  slaves: Instance[] = [];
  spider!: Instance;
  spiders: Instance[] = [];
  tdbctl?: TdbctlStandIn;
  tdbctlNode?: Instance;
  private readonly servers = new Map<Instance, MariadbServer>();
  private readonly replicaSource = new Map<Instance, Instance>();
  private readonly takenPorts = new Set<number>();
  private watchdog: ChildProcess | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    readonly ports: PortPlan,
    private readonly hostOf: HostOf,
    private readonly listenAlso?: ClusterOptions['listenAlso'],
  ) {}

  // ------------------------------------------------------------ start-up

  async boot(t: Topology): Promise<void> {
    this.watchdog = startWatchdog(this.dir);
    await this.plan(t);
    // One mariadb-install-db and a copy per instance beats one install per instance: ~0.5 s
    // instead of ~1.6 s for five on two cores, and parallel installs sharing /tmp were flaky.
    const template = join(this.dir, 'template', 'data');
    await installDatadir(template, join(this.dir, 'template', 'tmp'));
    await Promise.all([...this.servers.values()].map((s) => cp(template, s.datadir, { recursive: true })));
    await Promise.all([...this.servers.keys()].map((inst) => this.firstStart(inst)));
    if (this.tdbctlNode) this.createStandIn(this.tdbctlNode);

    const entries = this.serverEntries();
    if (t.bare) {
      await Promise.all([...this.masters, ...this.slaves, ...this.spiders].map((i) => this.createAdmin(i)));
      await Promise.all(this.spiders.map((s) => this.exec(s, "INSTALL SONAME 'ha_spider'")));
      return;
    }
    await Promise.all([
      ...this.masters.map((m) => this.setupMaster(m, t.createTables)),
      ...this.spiders.map((s) => this.setupSpider(s, entries, t)),
      this.tdbctlNode ? this.setupTdbctlDatabase(this.tdbctlNode, entries) : undefined,
    ]);
    // Replicas only after their masters have the admin user they connect as.
    await Promise.all(this.slaves.map((s) => this.setupReplica(s)));
    if (this.tdbctl) await this.tdbctl.start();
    await this.waitReplicated();
  }

  private async plan(t: Topology): Promise<void> {
    for (let i = 0; i < t.shards; i++) {
      this.masters.push(await this.addInstance(`master${i}`, 'master', i, 1 + i));
    }
    for (const k of t.slaves) {
      const extraArgs = t.logSlaveUpdates.includes(k) ? ['--log-slave-updates'] : [];
      const slave = await this.addInstance(`slave${k}`, 'slave', k, 101 + k, extraArgs);
      this.slaves.push(slave);
      this.replicaSource.set(slave, this.masters[k]!);
    }
    for (let k = 0; k < t.spiders; k++) this.spiders.push(await this.addInstance(`spider${k}`, 'spider', 0, 201 + k));
    this.spider = this.spiders[0]!;
    if (t.tdbctl) this.tdbctlNode = await this.addInstance('tdbctl0', 'tdbctl', 0, 301);
  }

  /** The tdbctl node is reached through the stand-in, at spider port + 1000 as in TenDB. */
  private createStandIn(node: Instance): void {
    node.port = this.spider.port + TDBCTL_PORT_OFFSET;
    this.tdbctl = new TdbctlStandIn({
      host: node.host,
      port: node.port,
      user: ADMIN_USER,
      password: ADMIN_PASSWORD,
      backend: { host: node.host, port: this.serverOf(node).port, user: ADMIN_USER, password: ADMIN_PASSWORD },
    });
  }

  private async addInstance(name: string, role: Role, shardValue: number, serverId: number, extraArgs: string[] = []): Promise<Instance> {
    const host = role === 'tdbctl' ? this.spider.host : this.hostOf({ name, role, shardValue });
    if (!isIPv4(host)) throw new RangeError(`hosts: ${name}: "${host}" is not an IPv4 address`);
    const port = await this.freePort(role, host);
    const also = role === 'master' || role === 'slave' ? (this.listenAlso?.({ name, role, shardValue }) ?? []) : [];
    // A later --bind-address replaces the first (MariaDB ≥ 10.11 takes a list).
    if (also.length > 0) extraArgs = [...extraArgs, `--bind-address=${[host, ...also].join(',')}`];
    const server = new MariadbServer({ dir: join(this.dir, name), host, port, serverId, extraArgs });
    const inst: Instance = { name, role, host, port, socket: server.socket, datadir: server.datadir, shardValue };
    this.servers.set(inst, server);
    return inst;
  }

  /**
   * A spider port comes with its tdbctl companion (+1000). No instance sits 1000 below a spider
   * port: spiderbackup would take that spider node for the tdbctl of the instance below it.
   */
  private freePort(role: Role, host: string): Promise<number> {
    return role === 'spider'
      ? pickPort([this.ports.spider], this.takenPorts, { companions: [TDBCTL_PORT_OFFSET], avoid: [-TDBCTL_PORT_OFFSET], host })
      : pickPort(this.ports.data, this.takenPorts, { avoid: [TDBCTL_PORT_OFFSET], host });
  }

  /** First start; if another process grabbed the port since it was probed, moves to a new one. */
  private async firstStart(inst: Instance): Promise<void> {
    const server = this.serverOf(inst);
    for (let attempt = 1; ; attempt++) {
      try {
        return await server.start();
      } catch (err) {
        if (!(err instanceof PortInUseError) || attempt >= PORT_ATTEMPTS) throw err;
        server.port = await this.freePort(inst.role, inst.host);
        inst.port = server.port;
      }
    }
  }

  /** What `SELECT * FROM mysql.servers` shows on a TenDB spider / tdbctl node. */
  private serverEntries(): ServerEntry[] {
    const db = 'infodba_schema';
    return [
      ...this.masters.map((m): ServerEntry => ({ name: `SPT${m.shardValue}`, wrapper: 'mysql', host: m.host, port: m.port, database: db })),
      ...this.slaves.map((s): ServerEntry => ({
        name: `SPT_SLAVE${s.shardValue}`,
        wrapper: 'mysql_slave',
        host: s.host,
        port: s.port,
        database: db,
      })),
      ...this.spiders.map((s, k): ServerEntry => ({ name: `SPIDER${k}`, wrapper: 'SPIDER', host: s.host, port: s.port })),
    ];
  }

  private async setupMaster(m: Instance, createTables: boolean): Promise<void> {
    await this.createAdmin(m); // binlogged: replicas get the user from here
    if (createTables) {
      await this.exec(m, createSchema());
      await this.exec(m, createLocalTable());
    }
  }

  private async setupSpider(s: Instance, entries: ServerEntry[], t: Topology): Promise<void> {
    await this.createAdmin(s);
    await this.exec(s, "INSTALL SONAME 'ha_spider'"); // a second install is a silent no-op on 10.11
    if (t.spiderInternalXa) await this.exec(s, 'SET GLOBAL spider_internal_xa = ON');
    for (const e of entries) await this.createServer(s, e);
    if (t.createTables) {
      await this.exec(s, createSchema());
      // MariaDB's Spider rejects the shard_key table comment TSpider wants (error 12501).
      await this.exec(s, createSpiderTable(t.shards, false));
    }
  }

  private async setupTdbctlDatabase(node: Instance, entries: ServerEntry[]): Promise<void> {
    await this.createAdmin(node);
    for (const e of entries) await this.createServer(node, e);
    await this.createServer(node, { name: 'TDBCTL0', wrapper: 'TDBCTL', host: node.host, port: node.port });
  }

  private async createAdmin(inst: Instance): Promise<void> {
    await this.exec(inst, `CREATE USER '${ADMIN_USER}'@'%' IDENTIFIED BY ?`, [ADMIN_PASSWORD]);
    await this.exec(inst, `GRANT ALL PRIVILEGES ON *.* TO '${ADMIN_USER}'@'%' WITH GRANT OPTION`);
  }

  private async createServer(inst: Instance, e: ServerEntry): Promise<void> {
    const params: unknown[] = [e.host, e.port, ADMIN_USER, ADMIN_PASSWORD];
    let options = 'HOST ?, PORT ?, USER ?, PASSWORD ?';
    if (e.database) {
      options += ', DATABASE ?';
      params.push(e.database);
    }
    await this.exec(inst, `CREATE SERVER ${e.name} FOREIGN DATA WRAPPER ${e.wrapper} OPTIONS (${options})`, params);
  }

  /**
   * Replicates from the very start of the master's binlog, so the admin user and the schema arrive
   * by replication; creating them locally as well would stop replication (error 1396).
   */
  private async setupReplica(s: Instance): Promise<void> {
    const m = this.masterOf(s);
    await this.exec(
      s,
      `CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?,
         MASTER_LOG_FILE = 'mysql-bin.000001', MASTER_LOG_POS = 4,
         MASTER_CONNECT_RETRY = 1, MASTER_USE_GTID = no`,
      [m.host, m.port, ADMIN_USER, ADMIN_PASSWORD],
    );
    await this.exec(s, 'START SLAVE');
  }

  // ------------------------------------------------------------ Cluster API

  all(): Instance[] {
    return [...this.masters, ...this.slaves, ...this.spiders, ...(this.tdbctlNode ? [this.tdbctlNode] : [])];
  }

  masterOf(slave: Instance): Instance {
    const m = this.replicaSource.get(slave);
    if (!m) throw new Error(`${slave.name} is not a replica of this cluster`);
    return m;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- see Cluster.query
  async query<T = any>(inst: Instance, sql: string, params?: unknown[]): Promise<T[]> {
    const result = await this.run(inst, sql, params);
    return Array.isArray(result) ? (result as T[]) : [];
  }

  async exec(inst: Instance, sql: string, params?: unknown[]): Promise<{ affectedRows: number }> {
    const result = await this.run(inst, sql, params);
    return { affectedRows: Array.isArray(result) ? 0 : (result as ResultSetHeader).affectedRows };
  }

  /** A connection per call: cheap over the socket, and never stale after stop()/start(). */
  private async run(inst: Instance, sql: string, params?: unknown[]): Promise<unknown> {
    const conn = await mysql.createConnection({ socketPath: inst.socket, user: 'root' });
    try {
      const [result] = await conn.query(sql, params);
      return result;
    } catch (err) {
      (err as Error).message = `${inst.name}: ${(err as Error).message} [${sql.trim().slice(0, 120)}]`;
      throw err;
    } finally {
      await conn.end().catch(() => conn.destroy());
    }
  }

  async waitReplicated(timeoutMs = REPLICATION_TIMEOUT_MS): Promise<void> {
    await Promise.all(this.slaves.map((s) => this.waitReplica(s, timeoutMs)));
  }

  private async waitReplica(slave: Instance, timeoutMs: number): Promise<void> {
    const master = this.masterOf(slave);
    for (const inst of [master, slave]) {
      if (!this.serverOf(inst).running) throw new Error(`waitReplicated: ${inst.name} is stopped`);
    }
    const [target] = await this.query<{ File: string; Position: number }>(master, 'SHOW MASTER STATUS');
    if (!target) throw new Error(`waitReplicated: ${master.name} has no binary log`);
    const deadline = Date.now() + timeoutMs;
    let status: SlaveStatus | undefined;
    for (;;) {
      [status] = await this.query<SlaveStatus>(slave, 'SHOW SLAVE STATUS');
      if (!status) throw new Error(`waitReplicated: ${slave.name} has no replication configured`);
      if (status.Slave_SQL_Running === 'No' && status.Last_SQL_Errno) {
        throw new Error(`waitReplicated: replication on ${slave.name} stopped: ${status.Last_SQL_Errno} ${status.Last_SQL_Error}`);
      }
      if (binlogPosition(status.Relay_Master_Log_File, status.Exec_Master_Log_Pos) >= binlogPosition(target.File, target.Position)) return;
      if (Date.now() > deadline) break;
      await delay(25);
    }
    throw new Error(
      `waitReplicated: ${slave.name} did not reach ${master.name} ${target.File}:${target.Position} within ${formatDuration(timeoutMs)} ` +
        `(at ${status.Relay_Master_Log_File}:${status.Exec_Master_Log_Pos}, IO ${status.Slave_IO_Running} ${status.Last_IO_Error}, ` +
        `SQL ${status.Slave_SQL_Running} ${status.Last_SQL_Error})`,
    );
  }

  pidOf(inst: Instance): number | undefined {
    return this.serverOf(inst).pid;
  }

  async stop(inst: Instance): Promise<void> {
    if (inst.role === 'tdbctl') await this.tdbctl?.stop();
    await this.serverOf(inst).stop();
  }

  async start(inst: Instance): Promise<void> {
    await this.serverOf(inst).start(); // replicas restart replication by themselves
    if (inst.role === 'tdbctl') await this.tdbctl?.start();
  }

  writeInstanceIni(dir: string, inst: Instance, extra: Record<string, string> = {}): string {
    const backupDir = resolve(dir, 'dbbak');
    mkdirSync(backupDir, { recursive: true });
    const sections: Record<string, Record<string, string>> = {
      Public: {
        MysqlHost: inst.host,
        MysqlPort: String(inst.port),
        MysqlUser: ADMIN_USER,
        MysqlPasswd: ADMIN_PASSWORD,
        MysqlRole: ROLE_IN_INI[inst.role],
        MysqlCharset: 'utf8mb4',
        ShardValue: String(inst.shardValue),
        BackupDir: backupDir,
        BackupType: 'logical',
        BackupTimeOut: '09:00:00',
      },
      // Sections the new tool does not read; they must not trip it up.
      LogicalBackup: { Threads: '4', ChunkFilesize: '2048', Regex: '' },
    };
    // "Section.Key" in `extra` addresses another section; a plain key goes to [Public].
    for (const [key, value] of Object.entries(extra)) {
      const dot = key.indexOf('.');
      const [section, name] = dot > 0 ? [key.slice(0, dot), key.slice(dot + 1)] : ['Public', key];
      (sections[section] ??= {})[name] = value;
    }
    const path = resolve(dir, `dbbackup.${inst.port}.ini`);
    writeFileSync(path, ini.stringify(sections, { whitespace: true }));
    return path;
  }

  close(): Promise<void> {
    this.closing ??= this.teardown();
    return this.closing;
  }

  /** SIGKILL rather than a clean shutdown: the data is deleted right after, and it is much faster. */
  private async teardown(): Promise<void> {
    await this.tdbctl?.close().catch(() => {});
    await Promise.all([...this.servers.values()].map((s) => s.dispose()));
    if (this.watchdog?.pid !== undefined) {
      try {
        process.kill(this.watchdog.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  private serverOf(inst: Instance): MariadbServer {
    const s = this.servers.get(inst);
    if (!s) throw new Error(`${inst.name} is not an instance of this cluster`);
    return s;
  }
}

interface SlaveStatus {
  Slave_IO_Running: string;
  Slave_SQL_Running: string;
  Relay_Master_Log_File: string;
  Exec_Master_Log_Pos: number;
  Last_IO_Error: string;
  Last_SQL_Errno: number;
  Last_SQL_Error: string;
}

/** Orders (file, pos) pairs: mysql-bin.000002:4 is after mysql-bin.000001:<anything>. */
function binlogPosition(file: string, pos: number | string): bigint {
  const seq = Number(/\.(\d+)$/.exec(file)?.[1] ?? 0);
  return (BigInt(seq) << 40n) + BigInt(pos);
}

/**
 * A detached shell that outlives this process: once it is gone (crash, SIGKILL by a test runner)
 * it SIGKILLs the mariadbd processes whose pid files are still there and deletes the dir.
 */
function startWatchdog(dir: string): ChildProcess {
  const script = [
    // alive = exists and is not a zombie (a killed process stays one until its parent reaps it)
    'alive() { s=$(sed "s/.*) //" "/proc/$1/stat" 2>/dev/null | cut -c1); [ -n "$s" ] && [ "$s" != Z ]; }',
    'while alive "$1"; do sleep 1; done',
    'for f in "$2"/*/harness.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done',
    'rm -rf "$2"',
  ].join('\n');
  const child = spawn('sh', ['-c', script, 'sbit-watchdog', String(process.pid), dir], { detached: true, stdio: 'ignore' });
  child.unref();
  return child;
}
