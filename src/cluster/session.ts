// How a spider-side command reaches the cluster, opened once per command (CLI or daemon) and
// closed when it ends: which spider node and tdbctl (from -c or the drop-ins), what tdbctl says
// (whether this node is the primary, and mysql.servers with each server's credentials), and the
// command's kept connections. "Not the primary spider node" is decided and worded here only, and
// so is the note of a command that then answers from the shard masters directly (shard-tables.ts).
import type { AgentConfig } from '../config/agent.js';
import { discoverInstances } from '../config/discover.js';
import {
  instanceName,
  isSpiderInstance,
  loadInstanceConfig,
  roleWords,
  SPIDER_INI_WANTED,
  TDBCTL_PORT_OFFSET,
  type InstanceConfig,
} from '../config/instance.js';
import { connect, type Connection, type ConnectOptions, type Endpoint } from '../db/connect.js';
import { KeptConnections } from '../db/connections.js';
import { unreachableOf } from '../db/reachability.js';
import { errorMessage, InstanceError, OperationError, UsageError } from '../errors.js';
import { listServers, tdbctlGetPrimary, type PrimaryRow, type ServerRow } from '../sql/servers.js';
import { limitCommandLockWaits, lockWaitSecondsFor, whatHeldTheLock } from './lock-waits.js';

export interface SpiderTarget {
  spider: InstanceConfig;
  /** The control node beside it: [schedule] tdbctl, else spider port + 1000; same credentials unless its own ini is given. */
  tdbctl: Endpoint;
  /** Where the tdbctl address came from, for error messages. */
  tdbctlFrom: string;
}

/** Where the primary is, as `tdbctl get primary` names it: its tdbctl node and that node's spider node. */
export interface PrimaryAddress {
  /** "TDBCTL0 host:port". */
  tdbctl: string;
  /** "SPIDER0 host:port" from mysql.servers, else host:(tdbctl port − 1000). */
  spider: string;
}

/** tdbctl says this spider node is not the primary; the message names the primary when tdbctl did. */
export class NotPrimaryError extends OperationError {
  override readonly name = 'NotPrimaryError';
  constructor(
    readonly spider: string,
    readonly primary?: PrimaryAddress,
  ) {
    super(`${notPrimary(spider)} (tdbctl get primary)${primary ? `; ${primaryIs(primary)}` : ''}`);
  }
}

/** "the primary is tdbctl TDBCTL0 host:port, its spider node SPIDER0 host:port". */
export const primaryIs = (p: PrimaryAddress): string => `the primary is tdbctl ${p.tdbctl}, its spider node ${p.spider}`;

/** The primary's spider node in mysql.servers: at its tdbctl's host, tdbctl port − 1000. */
function primarySpiderRow(rows: readonly PrimaryRow[], servers: readonly ServerRow[]): ServerRow | undefined {
  const row = rows[0];
  if (!row) return undefined;
  const spiderPort = row.port - TDBCTL_PORT_OFFSET;
  return servers.find((s) => s.wrapper.toUpperCase() === 'SPIDER' && s.host === row.host && s.port === spiderPort);
}

/** The primary named by `tdbctl get primary`'s rows, its spider node looked up in mysql.servers. */
export function primaryAddress(rows: readonly PrimaryRow[], servers: readonly ServerRow[]): PrimaryAddress | undefined {
  const row = rows[0];
  if (!row) return undefined;
  const spiderPort = row.port - TDBCTL_PORT_OFFSET;
  const node = primarySpiderRow(rows, servers);
  return {
    tdbctl: `${row.serverName} ${row.host}:${row.port}`,
    spider: node ? `${node.serverName} ${node.host}:${node.port}` : `${row.host}:${spiderPort}`,
  };
}

/**
 * What tdbctl says of the cluster: mysql.servers, and, away from the primary, which node is (the
 * commands that work from any spider node then read the shard masters directly).
 */
export interface ClusterView {
  servers: ServerRow[];
  /** Set when this node is not the primary. */
  notPrimary?: NotPrimaryError;
  /** The primary's spider node as mysql.servers lists it (with its credentials), when it does. */
  primarySpider?: ServerRow;
}

/** The stderr note of a command that answered away from the primary, naming the primary. */
export function directNote(err: NotPrimaryError): string {
  const where = err.primary ? primaryIs(err.primary) : 'tdbctl names no primary';
  return `${notPrimary(err.spider)} (tdbctl get primary): read the shard masters directly (${where})`;
}

/** The one wording of it; NotPrimaryError's message adds how it was told. */
export const notPrimary = (spider: string): string => `${spider} is not the primary spider node`;

/** How to reach a server of mysql.servers: with the credentials its row gives. */
export const endpointOf = (s: ServerRow): Endpoint => ({ host: s.host, port: s.port, user: s.user, password: s.password });

/**
 * The bounds of every connection of a command: a hung instance fails its own statement, never
 * hangs the command; a statement waiting on another session's lock ends a little earlier, by the
 * server's lock_wait_timeout, naming who held it (lock-waits.ts).
 */
const CONNECT_TIMEOUT_MS = 10_000;

export const commandConnectOptions = (statementTimeoutMs: number): ConnectOptions => {
  const lockWaitS = lockWaitSecondsFor(statementTimeoutMs);
  return {
    // Connecting is a wait like any statement: a hung instance accepts the TCP connection and
    // never answers the handshake.
    connectTimeoutMs: Math.min(CONNECT_TIMEOUT_MS, statementTimeoutMs),
    queryTimeoutMs: statementTimeoutMs,
    init: limitCommandLockWaits(lockWaitS),
    whatHeld: whatHeldTheLock(lockWaitS),
  };
};

export class ClusterSession {
  /** Every connection of the command opens with these ([schedule] statement_timeout). */
  readonly connectOptions: ConnectOptions;
  /** Kept for the command's life: `schedule --wait` reads through the spider session it wrote through. */
  readonly connections: KeptConnections;
  private control: Promise<ClusterView> | undefined;
  private listed: Promise<ServerRow[]> | undefined;
  private noted = false;

  /** `note`: where a command that answered away from the primary says so, once (the CLI: stderr). */
  constructor(
    readonly target: SpiderTarget,
    statementTimeoutMs: number,
    private readonly note: (line: string) => void = () => {},
  ) {
    this.connectOptions = commandConnectOptions(statementTimeoutMs);
    this.connections = new KeptConnections({ connect: this.connectOptions });
  }

  /** The spider node, with the credentials of its own ini. */
  get spider(): InstanceConfig {
    return this.target.spider;
  }

  get spiderName(): string {
    return instanceName(this.target.spider);
  }

  /**
   * mysql.servers, once tdbctl said this node is the primary; else NotPrimaryError. tdbctl is
   * asked once per session (and again after askAgain()); an ask that failed is not kept.
   */
  async primaryServers(): Promise<ServerRow[]> {
    const view = await this.view();
    if (view.notPrimary) throw view.notPrimary;
    return view.servers;
  }

  /** mysql.servers and whether this node is the primary (which one is, when it is not). */
  view(): Promise<ClusterView> {
    this.control ??= this.remembered(
      this.ask(async (c): Promise<ClusterView> => {
        const rows = await tdbctlGetPrimary(c);
        const servers = await listServers(c);
        if (rows.some((r) => r.isThisServer)) return { servers };
        // Not here: which node is, so that every answer can name it.
        const primarySpider = primarySpiderRow(rows, servers);
        return {
          servers,
          notPrimary: new NotPrimaryError(this.spiderName, primaryAddress(rows, servers)),
          ...(primarySpider ? { primarySpider } : {}),
        };
      }),
      (p) => {
        if (this.control === p) this.control = undefined;
      },
    );
    return this.control;
  }

  /** Says, once per command, that it answered away from the primary and how (directNote). */
  answeredDirectly(err: NotPrimaryError): void {
    if (this.noted) return;
    this.noted = true;
    this.note(directNote(err));
  }

  /** mysql.servers whether or not this node is the primary (`status --cluster`, `pause --cluster`). */
  servers(): Promise<ServerRow[]> {
    this.listed ??= this.remembered(this.ask(listServers), (p) => {
      if (this.listed === p) this.listed = undefined;
    });
    return this.listed;
  }

  /** Forgets tdbctl's answers: after a wait of hours, the primary may have moved. */
  askAgain(): void {
    this.control = undefined;
    this.listed = undefined;
  }

  async close(): Promise<void> {
    await this.connections.close();
  }

  /**
   * One short connection to tdbctl. When it cannot be opened, the spider node itself is tried
   * first: tdbctl's address and login mostly come from the spider node's ini, and a wrong port or
   * password there is the ini's fault, not tdbctl's. Otherwise tdbctl is named, with where its
   * address and its login came from.
   */
  private async ask<T>(fn: (c: Connection) => Promise<T>): Promise<T> {
    const { tdbctl, tdbctlFrom } = this.target;
    let c: Connection;
    try {
      c = await connect(tdbctl, this.connectOptions);
    } catch (err) {
      await this.connections.get(this.spider); // throws the spider node's own error, ini named (db/connect.ts)
      const name = `${tdbctl.host}:${tdbctl.port}`;
      const why = errorMessage((err as Error).cause ?? err).replace(`${name}: `, '');
      const refused = unreachableOf(err)?.kind === 'login-refused';
      const login = tdbctl.file ?? this.spider.file;
      const what = refused
        ? `the tdbctl node refused the login of user '${tdbctl.user}' of ${login} (its address: ${tdbctlFrom})`
        : `the tdbctl node cannot be reached (${tdbctlFrom})`;
      throw new InstanceError(name, `${what}: ${why}`, (err as InstanceError).code, { cause: err });
    }
    try {
      return await fn(c);
    } finally {
      await c.close();
    }
  }

  /** An answer to keep; `forget` drops it should it fail. */
  private remembered<T>(answer: Promise<T>, forget: (p: Promise<T>) => void): Promise<T> {
    answer.catch(() => forget(answer));
    return answer;
  }
}

/** The session of a command run with `-c files` (or the drop-ins); nothing is connected to yet. */
export function openClusterSession(
  config: AgentConfig,
  files: readonly string[] | undefined,
  note?: (line: string) => void,
): ClusterSession {
  return new ClusterSession(resolveSpiderTarget(config, files), config.schedule.statementTimeoutMs, note);
}

/** Which spider node (and its tdbctl) the command acts on, from -c or the drop-ins. */
export function resolveSpiderTarget(config: AgentConfig, files: readonly string[] | undefined): SpiderTarget {
  if (files && files.length > 0) {
    if (files.length > 2)
      throw new UsageError(`-c: give the spider node's ini, optionally with its tdbctl's ini; got ${files.length} files`);
    const loaded = files.map((f) => loadInstanceConfig(f)).sort((a, b) => a.port - b.port);
    const [spider, ctl] = loaded as [InstanceConfig, InstanceConfig | undefined];
    if (ctl && ctl.port !== spider.port + TDBCTL_PORT_OFFSET) {
      throw new UsageError(
        `-c: with two files the spider node is the lower port (${spider.port}) and the other must be its tdbctl at port ` +
          `${spider.port + TDBCTL_PORT_OFFSET}, not ${ctl.port} (${ctl.file})`,
      );
    }
    if (!isSpiderInstance(spider) || spider.role.includes('tdbctl'))
      throw new UsageError(`-c ${spider.file}: this ini is of ${roleWords(spider)}; this command needs ${SPIDER_INI_WANTED}`);
    return ctl ? { spider, tdbctl: ctl, tdbctlFrom: ctl.file } : { spider, ...controlOf(config, spider) };
  }
  // tdbctl's own drop-in is not served by the agent, but names the control node's address.
  const found = discoverInstances(config.agent.configDir);
  const instances = [...found.instances, ...found.tdbctl.map((t) => t.instance)];
  const ports = new Set(instances.map((i) => i.port));
  // A tdbctl drop-in sits at a spider's port + 1000; it is not a spider node itself.
  const spiders = instances.filter((i) => isSpiderInstance(i) && !ports.has(i.port - TDBCTL_PORT_OFFSET));
  if (spiders.length !== 1) {
    throw new UsageError(
      `cannot tell which spider node to use: ${spiders.length} spider instance configs in ${config.agent.configDir}; give one with -c ` +
        `dbbackup.<port>.ini`,
    );
  }
  const spider = spiders[0] as InstanceConfig;
  const ctl = config.schedule.tdbctl ? undefined : instances.find((i) => i.port === spider.port + TDBCTL_PORT_OFFSET);
  return ctl ? { spider, tdbctl: ctl, tdbctlFrom: ctl.file } : { spider, ...controlOf(config, spider) };
}

function controlOf(config: AgentConfig, spider: InstanceConfig): { tdbctl: Endpoint; tdbctlFrom: string } {
  const credentials = { user: spider.user, password: spider.password };
  const given = config.schedule.tdbctl;
  if (given) return { tdbctl: { ...given, ...credentials }, tdbctlFrom: `[schedule] tdbctl in ${config.file ?? 'the agent config'}` };
  return {
    tdbctl: { host: spider.host, port: spider.port + TDBCTL_PORT_OFFSET, ...credentials },
    tdbctlFrom: `spider port ${spider.port} + ${TDBCTL_PORT_OFFSET}; set [schedule] tdbctl = host:port if it is elsewhere`,
  };
}
