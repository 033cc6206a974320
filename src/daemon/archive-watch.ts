// Which served instances have their binlogs archived, decided every ARCHIVE_EVERY_MS off the tick
// (README "Binlog archive"): every served instance that is a shard master now by its own state
// (binary log on, no replication configured, read_only off; never a spider node) gets a
// BinlogArchiver into `shard-<ShardValue>`; one that stopped being a master loses it. Each master's
// lag is read every LAG_EVERY_MS for the metrics and `status`. Never under the host lock. An
// instance a restore task runs on is not archived meanwhile (its load, RESET MASTER and replay are
// not the shard's history): its archiver stops before the restore's worker starts, and starts again
// once the restore is over (the restore leaves a master at a new binlog file starting at the point,
// which chooseStart then picks). Status and the presence say "restore in progress".
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { discoverInstances } from '../config/discover.js';
import { isSpiderInstance, type InstanceConfig } from '../config/instance.js';
import { connect } from '../db/connect.js';
import { errorMessage } from '../errors.js';
import { formatDuration, formatSeconds } from '../format.js';
import type { PresenceArchive } from '../sql/presence.js';
import { closeRepository, openAgentRepository } from '../repo/agent-repository.js';
import type { Repository } from '../repo/repository.js';
import { archiveReach } from '../archive/archive-index.js';
import { readShardArchive } from '../archive/archive-store.js';
import { binlogRole, replicationConnections } from '../sql/binlog-source.js';
import { BinlogArchiver, type ArchiverView } from './binlog-archiver.js';
import { singleFlight } from './single-flight.js';

export const ARCHIVE_EVERY_MS = 30_000;
export const LAG_EVERY_MS = 5000;
/** How often the shard archives are read for holes (and on every reload). */
export const HOLES_EVERY_MS = 300_000;

export interface ArchiveWatchDeps {
  config: () => AgentConfig;
  logger: () => Logger;
  /** The lag of every archiving master, and the bound (undefined: archiving is off). */
  onLag: (views: readonly ArchiverView[], maxLagS: number | undefined) => void;
  /** Why an instance is not to be archived now (a restore task runs on it, or is about to), or undefined. */
  restoring?: (host: string, port: number) => string | undefined;
}

export interface ArchiveWatch {
  start(): void;
  /** Looks again now (a reload). */
  poke(): void;
  /** For `status`: one line per archiving master (and its problems); undefined while archiving is off. */
  lines(): string[] | undefined;
  /** What the presence row of an archiving master carries (status --cluster); undefined when it is not archived here. */
  presenceOf(host: string, port: number): PresenceArchive | undefined;
  /**
   * A restore is about to start on the instance: its archiver (if any) stops, and it is not
   * archived until `restoring` says the restore is over. Resolves once nothing streams it.
   */
  hold(host: string, port: number, why: string): Promise<void>;
  stop(): Promise<void>;
}

/** Whether an instance is a shard master by its own state; undefined when it cannot be asked. */
async function isShardMaster(inst: InstanceConfig): Promise<boolean> {
  const conn = await connect(inst, { connectTimeoutMs: 5000, queryTimeoutMs: 10_000 });
  try {
    const role = await binlogRole(conn);
    if (!role.logBin || role.readOnly) return false;
    return (await replicationConnections(conn)) === 0;
  } finally {
    await conn.close();
  }
}

export function createArchiveWatch(deps: ArchiveWatchDeps): ArchiveWatch {
  const archivers = new Map<string, BinlogArchiver>();
  let repo: { key: string; repo: Repository } | undefined;
  let timers: NodeJS.Timeout[] = [];
  let stopped = false;
  let active = false;
  const unknown = new Map<string, string>();
  /** Instances not archived because a restore runs on them (name → why), for status and the presence. */
  const held = new Map<string, string>();

  const stopAll = async () => {
    await Promise.all([...archivers.values()].map((a) => a.stop()));
    archivers.clear();
    if (repo) closeRepository(repo.repo);
    repo = undefined;
  };

  const look = async (): Promise<void> => {
    const config = deps.config();
    const log = deps.logger();
    if (!config.archive.binlogs || config.repository === undefined) {
      if (!active) return;
      log.info('binlog archive off: the archivers stop');
      active = false;
      await stopAll();
      deps.onLag([], undefined);
      return;
    }
    active = true;
    // Another repository or other archive settings: every archiver starts over with them.
    const key = JSON.stringify([config.repository, config.archive, config.agent.configDir]);
    if (repo?.key !== key) {
      await stopAll();
      repo = { key, repo: await openAgentRepository(config) };
    }
    let served: InstanceConfig[];
    try {
      served = discoverInstances(config.agent.configDir).instances.filter((i) => !isSpiderInstance(i) && i.role !== 'tdbctl');
    } catch {
      return; // the tick reports what is wrong with config_dir
    }
    const masters = new Map<string, InstanceConfig>();
    const keep = new Set<string>();
    const restoringNow = new Map<string, string>();
    for (const inst of served) {
      const name = `${inst.host}:${inst.port}`;
      const why = deps.restoring?.(inst.host, inst.port);
      if (why !== undefined) {
        restoringNow.set(name, why);
        continue;
      }
      try {
        if (await isShardMaster(inst)) masters.set(name, inst);
        unknown.delete(name);
      } catch (err) {
        // Cannot ask it now: what runs for it goes on (its stream retries by itself).
        keep.add(name);
        if (unknown.get(name) !== errorMessage(err))
          log.warn({ port: inst.port, err: errorMessage(err) }, 'binlog archive: cannot tell whether the instance is a shard master');
        unknown.set(name, errorMessage(err));
      }
    }
    if (stopped) return;
    for (const [name, why] of restoringNow) {
      if (!held.has(name)) log.info({ instance: name, why }, 'binlog archive: a restore runs on it; not archived meanwhile');
      held.set(name, why);
      const a = archivers.get(name);
      archivers.delete(name);
      await a?.stop();
    }
    for (const name of held.keys())
      if (!restoringNow.has(name)) {
        log.info({ instance: name }, 'binlog archive: the restore on it is over; archived again if it is a shard master');
        held.delete(name);
      }
    for (const [name, a] of archivers)
      if (!masters.has(name) && !keep.has(name)) {
        log.info({ instance: name }, 'binlog archive: no longer a shard master here; its archiver stops');
        archivers.delete(name);
        await a.stop();
      }
    for (const [name, inst] of masters) {
      if (archivers.has(name)) continue;
      log.info({ instance: name, shard: inst.shardValue }, 'binlog archive: a shard master; its archiver starts');
      const a = new BinlogArchiver({
        master: {
          host: inst.host,
          port: inst.port,
          user: inst.user,
          password: inst.password,
          file: inst.file,
          shard: inst.shardValue,
          role: inst.role,
        },
        repo: repo.repo,
        spoolDir: join(config.archive.spoolDir, `${inst.host}_${inst.port}`),
        serverId: config.archive.serverId,
        maxLagMs: config.archive.maxLagMs,
        logger: log,
      });
      archivers.set(name, a);
      a.start();
    }
  };

  const looking = singleFlight((err) =>
    deps.logger().error({ err: errorMessage(err) }, 'binlog archive: looking for shard masters failed'),
  );
  const runLook = () => {
    if (!stopped) looking.run(look);
  };

  // The shard archives as stored, looked at now and then: a deleted object, or a file that never
  // got there, is a hole status --cluster names (verify and the restore plans read it themselves).
  const holes = new Map<number, string>();
  const findHoles = async () => {
    const r = repo?.repo;
    if (!r) return;
    const shards = new Set([...archivers.values()].map((a) => a.view().shard));
    for (const shard of shards) {
      const { files, problems } = await readShardArchive(r, shard);
      const found = [...problems, ...archiveReach(files).gaps.map((g) => `after ${g.after || 'the start'}: ${g.reason}`)];
      if (found.length > 0 && holes.get(shard) !== found.join('; '))
        deps.logger().warn({ shard, holes: found }, 'binlog archive: a hole in the shard archive');
      if (found.length > 0) holes.set(shard, found.join('; '));
      else holes.delete(shard);
    }
    for (const shard of holes.keys()) if (!shards.has(shard)) holes.delete(shard);
  };
  const lookingForHoles = singleFlight((err) =>
    deps.logger().warn({ err: errorMessage(err) }, 'binlog archive: cannot read the shard archives'),
  );
  const runFindHoles = () => {
    if (!stopped) lookingForHoles.run(findHoles);
  };

  const lag = async () => {
    const list = [...archivers.values()];
    await Promise.all(list.map((a) => a.checkLag()));
    if (active)
      deps.onLag(
        list.map((a) => a.view()),
        deps.config().archive.maxLagMs / 1000,
      );
  };

  return {
    start() {
      runLook();
      timers = [
        setInterval(runLook, ARCHIVE_EVERY_MS),
        setInterval(
          () => void lag().catch((err: unknown) => deps.logger().error({ err: errorMessage(err) }, 'binlog archive: lag check failed')),
          LAG_EVERY_MS,
        ),
        setInterval(runFindHoles, HOLES_EVERY_MS),
      ];
    },
    poke() {
      runLook();
      runFindHoles();
    },
    lines() {
      if (!active) return undefined;
      const restoring = [...held].map(([name, why]) => `${name}: restore in progress, not archived: ${why}`);
      if (archivers.size === 0 && restoring.length === 0) return ['on; no shard master served here'];
      return [...[...archivers.values()].flatMap((a) => lineOf(a.view())), ...restoring];
    },
    presenceOf(host, port) {
      const why = held.get(`${host}:${port}`);
      if (why !== undefined) return { lagS: null, gtid: '', note: `restore in progress: ${why}` };
      const a = archivers.get(`${host}:${port}`);
      return a ? presenceArchiveOf(a.view(), deps.config().archive.maxLagMs, holes.get(a.view().shard)) : undefined;
    },
    async hold(host, port, why) {
      const name = `${host}:${port}`;
      // Waits for a look in flight: it could start this instance's archiver after the stop below.
      await looking.inFlight();
      if (!active) return;
      if (!held.has(name)) deps.logger().info({ instance: name, why }, 'binlog archive: a restore starts on it; its archiver stops');
      held.set(name, why);
      const a = archivers.get(name);
      archivers.delete(name);
      await a?.stop();
    },
    async stop() {
      stopped = true;
      for (const t of timers) clearInterval(t);
      await looking.inFlight();
      await lookingForHoles.inFlight();
      await stopAll();
    },
  };
}

/** "port 20000 (shard 1): lag 0 s, archived up to 0-1-1234, streaming mysql-bin.000003" and its problems. */
export function lineOf(v: ArchiverView): string[] {
  const head = `port ${v.port} (shard ${v.shard})`;
  const lag = v.lagS === undefined ? 'lag not measured yet' : `lag ${formatDuration(Math.round(v.lagS * 1000))}`;
  if (v.waiting) return [`${head}: not archived yet: ${v.waiting}`];
  const out = [`${head}: ${lag}, archived up to ${v.archived || 'nothing yet'}${v.file ? `, streaming ${v.file}` : ''}`];
  if (v.problem) out.push(`${head}: PROBLEM: ${v.problem}`);
  if (v.gap) out.push(`${head}: GAP: ${v.gap}`);
  if (v.purgeWarning) out.push(`${head}: WARNING: ${v.purgeWarning}`);
  return out;
}

/** An archiver's state as its master's presence row carries it: what is wrong first, a lag over the bound last. */
export function presenceArchiveOf(v: ArchiverView, maxLagMs: number, holes?: string): PresenceArchive {
  const over =
    v.lagS !== undefined && v.lagS * 1000 > maxLagMs
      ? `lag ${formatSeconds(v.lagS)} over max_lag ${formatSeconds(maxLagMs / 1000)}`
      : undefined;
  const note = [
    v.waiting && `not archived yet: ${v.waiting}`,
    v.problem,
    v.gap && `gap: ${v.gap}`,
    holes && `hole in the archive ${holes}`,
    v.purgeWarning,
    over,
  ]
    .filter((x): x is string => Boolean(x))
    .join('; ');
  return { lagS: v.lagS === undefined ? null : Math.round(v.lagS), gtid: v.archived, note };
}
