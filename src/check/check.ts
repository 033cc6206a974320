// The per-host check step (SPEC §3 `check`, §5): journal delivery and housekeeping on every local
// instance, then — if nothing runs on this host — the earliest backup id, instance by instance.
// "Nothing runs" is the host's answer (its processes and the host lock), not only the rows'.
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { discoverInstances } from '../config/discover.js';
import { isReplicaInstance, isSpiderInstance, type InstanceConfig } from '../config/instance.js';
import { connect, isNoSuchTable, type Connection } from '../db/connect.js';
import { KeptConnections, type KeptConnectionsOptions } from '../db/connections.js';
import { ConfigError, errorMessage } from '../errors.js';
import { scanHost } from '../host/host-scan.js';
import { addPresenceArchiveColumns, createClusterPauseTable, createPresenceTable, createSchema } from '../sql/ddl.js';
import { isClusterPauseDenied, isMissingClusterPauseTable, listUnfinishedTasksAndPause, type ClusterPause } from '../sql/cluster-pause.js';
import { isUnknownColumn, upsertPresence, type Presence } from '../sql/presence.js';
import { UnloggedSessions } from './unlogged-sessions.js';
import * as sql from '../sql/tasks.js';
import { Backoff } from './backoff.js';
import { deliverJournal } from '../host/deliver.js';
import { createAgentEvents, logEveryProblem, type AgentEvents } from './events.js';
import { housekeep } from './housekeeping.js';
import { formatSeconds } from '../format.js';
import { clockStepS, clockStepThresholdS, type ClockLook } from './clock-step.js';
import { JournalReadError, pendingJournalKeys } from '../host/journal.js';
import { buildLocalView, hostBusyReason } from '../host/local-view.js';
import { pickWork, type Pick } from './pick.js';
import { missingPrivilege } from '../db/privileges.js';
import { unreachableOf, type Unreachable } from '../db/reachability.js';
import { hostPaths, type TaskRecord } from '../host/protocol.js';
import { PURGE, purgeOld } from './purge.js';
import { readRecords, removeRecordIfUnchanged } from '../host/records.js';
import { startTask } from '../host/start-task.js';
import { isValidBackupId } from '../task/backup-id.js';
import { isFinished, isRunnable, REASON, STATUS } from '../task/status.js';
import { type TaskKey, type TaskRow, taskKeyString } from '../task/task.js';

export interface CheckOptions {
  run: boolean;
  backupId?: string;
  /** Instance files given with -c; otherwise the drop-ins of [agent] config_dir. */
  files?: string[];
  /**
   * true (CLI): back up every instance of the id one after another, waiting for each.
   * false (daemon): start the next backup and return; the next tick continues.
   */
  waitForBackups: boolean;
  /** false (daemon while paused): deliver and housekeep, but start no backup. Default true. */
  start?: boolean;
  /** false (daemon): old rows are purged off the tick, see purgeAll. Default true (CLI). */
  purge?: boolean;
}

export interface CheckDeps {
  config: AgentConfig;
  logger: Logger;
  /**
   * Where started, killed, expired … and problems (which may repeat every tick: a broken drop-in,
   * an instance down) are told. The daemon passes its own; default: one that logs every problem.
   */
  events?: AgentEvents;
  /** The fd the agent logs to (CLI: 2, daemon: 1); supervisors log there too. */
  logFd?: 1 | 2;
  /** Tasks whose supervisor could not start them wait before the next try (daemon). */
  backoff?: Backoff;
  /** The daemon's kept connections; without them (CLI) the run opens its own and closes them. */
  connections?: KeptConnections;
  /** The daemon's unbinlogged sessions on replicas (its own writes there); as `connections` otherwise. */
  unlogged?: UnloggedSessions;
  /**
   * Tasks seen unfinished before (the daemon's previous tick): one that is not unfinished any more
   * is read by its key, so what it ended as is known without reading the history every tick.
   */
  watch?: Iterable<TaskKey>;
  /** Each instance's most recently finished task (by drop-in file), kept by the daemon for status. */
  lastFinished?: Map<string, TaskRow | undefined>;
  /**
   * Each instance's last look (by drop-in file), kept by the daemon: a step of the database clock
   * since then makes decisions by age wait one more look (clock-step.ts). The CLI has no last look.
   */
  clockLooks?: Map<string, ClockLook>;
  /** Each instance's most recent successful task (by drop-in file), kept by the daemon for metrics. */
  lastSuccess?: Map<string, TaskRow | undefined>;
  /**
   * Why the agent's own writes on an instance wait (a restore task of this host runs on it: a
   * binlogged write there would land among the restored GTIDs), or undefined. Its rows are still read.
   */
  holdWrites?: (instance: InstanceConfig) => string | undefined;
  /** The daemon's presence for each instance it serves, written there after its rows are read. */
  presence?: (
    instance: InstanceConfig,
    tasks: readonly TaskRow[],
    records: readonly TaskRecord[],
    clusterPause: ClusterPause | undefined,
  ) => Presence;
}

/**
 * The agent's connections: a hung server delays only its own instance, and one that cannot be
 * reached is tried again with backoff rather than every tick.
 */
export const CONNECTIONS: KeptConnectionsOptions = {
  connect: { connectTimeoutMs: 10_000, queryTimeoutMs: 30_000 },
  reconnect: { firstMs: 1000, capMs: 60_000 },
};

export interface InstanceReport {
  instance: InstanceConfig;
  /** Unfinished tasks, and the watched ones that finished since the last look. */
  tasks: TaskRow[];
  /** The most recently finished task, when the caller keeps track (daemon). */
  last?: TaskRow;
  error?: string;
  /** Set with `error` when the instance cannot be reached or refuses the login (not for a refused statement). */
  unreachable?: Unreachable;
  /** How many unfinished rows the instance has, when more than were read (sql/tasks.ts UNFINISHED_READ_LIMIT). */
  unfinishedTotal?: number;
  /** Problems that did not stop the instance from being served (the presence could not be written …). */
  warnings?: string[];
}

export interface Outcome {
  task: TaskRow;
  pid?: number;
  /** Final status as read back (CLI), or `running` when not waited for. */
  status: string;
  note?: string;
}

export interface CheckReport {
  configErrors: ConfigError[];
  /** Drop-ins recognised and deliberately not served (tdbctl's own), one line each for `status`. */
  notServed: string[];
  instances: InstanceReport[];
  pick: Pick;
  outcomes: Outcome[];
  /** Why nothing was started although tasks wait: a backup (ours or the old tool's) runs here. */
  hostBusy?: string;
  /** The supervisors' records as read at the start of the run (progress of running backups). */
  records: TaskRecord[];
  /** A cluster-wide pause (`pause --cluster`) read on one of the instances: nothing starts. */
  clusterPause?: ClusterPause;
  ok: boolean;
}

export async function runCheck(deps: CheckDeps, opts: CheckOptions): Promise<CheckReport> {
  const { config, logger } = deps;
  const events = deps.events ?? logEveryProblem(createAgentEvents(), logger);
  const problem: Problem = (key, fields, msg) => events.emit('problem', { key, fields, msg });
  const { instances, errors: configErrors, tdbctl } = discoverInstances(config.agent.configDir, opts.files);
  for (const e of configErrors) problem(`config:${e.file}`, { file: e.file, key: e.key }, `instance config skipped: ${e.message}`);

  const connections = deps.connections ?? new KeptConnections(CONNECTIONS);
  const unlogged = deps.unlogged ?? new UnloggedSessions(new KeptConnections(CONNECTIONS));
  const paths = hostPaths(config.agent.hostLock);
  // Before the rows: a record's task is read by its key even when its row no longer looks unfinished.
  const records = readRecords(paths.records);
  if (records.error !== undefined) problem('records', { err: records.error }, "cannot read the supervisors' records");
  const watched = [...(deps.watch ?? []), ...records.records.map((r) => r.key)];
  let sessions: Session[];
  try {
    sessions = await Promise.all(
      instances.map((inst) => openSession(deps, { connections, unlogged }, inst, watched, records.records, opts.run, problem)),
    );
    if (opts.run) await housekeepAll({ ...deps, events }, connections, sessions, records.records, watched, problem);
  } finally {
    if (deps.connections === undefined) await connections.close();
    if (deps.unlogged === undefined) await unlogged.close();
  }
  const reports: InstanceReport[] = sessions.map(({ instance, tasks, error, unreachable, warnings, unfinishedTotal }) => {
    const last = deps.lastFinished?.get(instance.file);
    return {
      instance,
      tasks,
      ...(last === undefined ? {} : { last }),
      ...(error === undefined ? {} : { error }),
      ...(unreachable === undefined ? {} : { unreachable }),
      ...(unfinishedTotal === undefined ? {} : { unfinishedTotal }),
      ...(warnings.length === 0 ? {} : { warnings }),
    };
  });
  for (const r of reports) {
    if (r.error !== undefined)
      problem(`instance:${r.instance.file}`, { port: r.instance.port, file: r.instance.file, err: r.error }, 'instance skipped this round');
  }

  const now = Date.now();
  const backoff = deps.backoff;
  const candidates = reports
    .flatMap((r) => r.tasks)
    .filter((t) => !(backoff && isRunnable(t.status) && backoff.waiting(taskKeyString(t), now)));
  const pick = pickWork(candidates, opts.backupId);
  const outcomes: Outcome[] = [];
  let hostBusy: string | undefined;
  if (pick.kind === 'run') {
    // A fresh look: housekeeping may just have killed what ran. The host decides whether anything
    // may start (the host lock decides last).
    hostBusy = hostBusyReason(buildLocalView(scanHost(), readRecords(paths.records).records, hostOf(config)));
  }
  // Any instance's copy of the cluster pause holds the whole host: it is one cluster-wide decision.
  const clusterPause = sessions.find((s) => s.clusterPause !== undefined)?.clusterPause;
  if (opts.run && opts.start !== false && clusterPause === undefined && pick.kind === 'run') {
    if (hostBusy !== undefined) {
      problem('host-busy', { reason: hostBusy }, `nothing started: ${hostBusy}`);
    } else {
      for (const task of pick.tasks) {
        const instance = instances.find((i) => i.port === task.port) as InstanceConfig;
        const outcome = await runOne({ ...deps, events }, instance, task, opts.waitForBackups);
        if (outcome.note === 'busy') {
          hostBusy = 'another runner started a backup on this host meanwhile (host lock held)';
          logger.info({ backupId: task.backupId, port: task.port }, `not started: ${hostBusy}`);
          break;
        }
        outcomes.push(outcome);
        if (!opts.waitForBackups && outcome.status === STATUS.running) break;
      }
    }
  } else if (pick.kind === 'busy') {
    logger.debug({ running: pick.running.map((t) => `${t.backupId}@${t.port}`) }, 'a backup of this host is running; nothing started');
  }
  if (opts.run && opts.purge !== false) await purgeAll({ ...deps, events }, instances, problem);
  // Waited for, a backup must have ended `success`; handed off (daemon), `running` is the result.
  const fine = (o: Outcome) => o.note === 'skipped' || o.status === STATUS.success || (!opts.waitForBackups && o.status === STATUS.running);
  const ok = configErrors.length === 0 && reports.every((r) => r.error === undefined) && outcomes.every(fine);
  return {
    configErrors,
    notServed: tdbctl.map((t) => t.note),
    instances: reports,
    pick,
    outcomes,
    ...(hostBusy !== undefined ? { hostBusy } : {}),
    records: records.records,
    ...(clusterPause !== undefined ? { clusterPause } : {}),
    ok,
  };
}

interface Session {
  instance: InstanceConfig;
  conn?: Connection;
  own?: OwnWrites;
  tasks: TaskRow[];
  clusterPause?: ClusterPause;
  unfinishedTotal?: number;
  error?: string;
  unreachable?: Unreachable;
  warnings: string[];
}

/** Gets the instance's connection, delivers the journal (with --run) and reads the instance's rows. */
async function openSession(
  deps: CheckDeps,
  { connections, unlogged }: { connections: KeptConnections; unlogged: UnloggedSessions },
  instance: InstanceConfig,
  watched: readonly TaskKey[],
  records: readonly TaskRecord[],
  run: boolean,
  problem: Problem,
): Promise<Session> {
  const session: Session = { instance, tasks: [], warnings: [] };
  try {
    session.conn = await connections.get(instance);
    if (run) {
      try {
        await deliverJournal(session.conn, instance, deps.config.agent.stateDir, deps.logger.child({ port: instance.port }));
      } catch (err) {
        // Rows are still read and backups still start; housekeeping waits for a readable journal.
        if (!(err instanceof JournalReadError)) throw err;
        problem('journal', { err: err.message }, 'journal not delivered');
      }
    }
    const held = deps.holdWrites?.(instance);
    const own: OwnWrites = held !== undefined ? () => Promise.resolve({ refused: held }) : ownWrites(unlogged, session.conn, instance);
    session.own = own;
    // A bare instance (a restore's target) has no task table yet: no tasks, but its agent still announces itself.
    const read = await readTasks(deps, session.conn, own, instance, watched, problem).catch((err: unknown) => {
      if (!isNoSuchTable(err) || session.conn?.broken === true) throw err;
      return { tasks: [], total: 0, clusterPause: undefined };
    });
    session.tasks = run ? await refuseInvalidIds(session.conn, read.tasks, deps.logger.child({ port: instance.port })) : read.tasks;
    session.clusterPause = read.clusterPause;
    if (read.total > read.tasks.length) session.unfinishedTotal = read.total;
    if (deps.presence) {
      const presence = deps.presence(instance, session.tasks, records, read.clusterPause);
      const warning = await announce(own, presence, instance, problem);
      if (warning !== undefined) session.warnings.push(warning);
    }
  } catch (err) {
    failSession(connections, session, err);
  }
  return session;
}

/**
}

/**
 * The presence write: one statement a tick. The table is created where it is missing; a failure
 * (a read-only replica for a user without the privilege, …) is a problem logged once, and the
 * instance is served all the same. On a replica whose user may not keep it out of the binary log
 * it is not written: "not reporting", said once.
 */
async function announce(own: OwnWrites, presence: Presence, instance: InstanceConfig, problem: Problem): Promise<string | undefined> {
  let conn: Connection | undefined;
  try {
    const target = await own();
    if ('refused' in target) {
      problem(`presence:${instance.file}`, { port: instance.port, err: target.refused }, `not reporting: ${target.refused}`);
      return `not reporting: ${target.refused}`;
    }
    conn = target;
    try {
      await upsertPresence(conn, presence);
    } catch (err) {
      // A bare instance has no schema either: created as the table is (on a replica, unbinlogged).
      if (isNoSuchTable(err)) {
        await conn.query(createSchema());
        await conn.query(createPresenceTable());
      }
      // A table of an older agent lacks the archive's columns: added once, by the first agent that
      // archives; an agent that does not archive writes the row without them.
      else if (isUnknownColumn(err) && presence.archive) await conn.query(addPresenceArchiveColumns());
      else if (isUnknownColumn(err) && presence.archive === null) {
        const { archive: _none, ...withoutArchive } = presence;
        await upsertPresence(conn, withoutArchive);
        return undefined;
      } else throw err;
      await upsertPresence(conn, presence);
    }
  } catch (err) {
    if (conn?.broken === true && !isReplicaInstance(instance)) throw err;
    const why = missingPrivilege(err, 'presence') ?? errorMessage(err);
    problem(`presence:${instance.file}`, { port: instance.port, err: why }, "cannot publish this agent's presence");
    return `cannot publish this agent's presence: ${why}`;
  }
  return undefined;
}

/**
 * Where the agent's own writes on an instance go (its presence, the tables it creates): the tick's
 * connection on a master or spider node, where they are normal binlogged transactions; on a
 * replica its unbinlogged session (unlogged-sessions.ts), or nowhere when the user may not.
 */
type OwnWrites = () => Promise<Connection | { refused: string }>;

function ownWrites(unlogged: UnloggedSessions, conn: Connection, instance: InstanceConfig): OwnWrites {
  if (!isReplicaInstance(instance)) return () => Promise.resolve(conn);
  return async () => {
    const u = await unlogged.get(instance);
    return 'refused' in u ? u : u.conn;
  };
}

/**
 * A waiting row whose backup id `schedule` would refuse ('..', a separator …: the old tool, a hand
 * or any account with INSERT can write one) would name a path outside BackupDir: it is ended
 * `failed: invalid backup id`, conditional on the status observed, and never started.
 */
async function refuseInvalidIds(conn: Connection, tasks: TaskRow[], logger: Logger): Promise<TaskRow[]> {
  const kept: TaskRow[] = [];
  for (const t of tasks) {
    if (!isRunnable(t.status) || isValidBackupId(t.backupId)) {
      kept.push(t);
      continue;
    }
    const ended = await sql.updateStatus(conn, t, t.status, REASON.invalidBackupId);
    if (ended)
      logger.error({ backupId: t.backupId, shardValue: t.shardValue, status: REASON.invalidBackupId }, 'task refused: invalid backup id');
    kept.push(ended ? { ...t, status: REASON.invalidBackupId } : t);
  }
  return kept;
}

/**
 * The unfinished rows (one statement when idle), then each watched task of this instance that is
 * not among them, by its key; and, once per connection life, the last finished task for status.
 */
async function readTasks(
  deps: CheckDeps,
  conn: Connection,
  own: OwnWrites,
  instance: InstanceConfig,
  watched: readonly TaskKey[],
  problem: Problem,
): Promise<{ tasks: TaskRow[]; total: number; clusterPause: ClusterPause | undefined }> {
  const { tasks, total, clusterPause } = await readUnfinished(conn, own, instance, problem);
  const have = new Set(tasks.map(taskKeyString));
  const mine = new Map<string, TaskKey>();
  for (const k of watched)
    if (k.host === instance.host && k.port === instance.port && !have.has(taskKeyString(k))) mine.set(taskKeyString(k), k);
  for (const k of mine.values()) {
    const row = await sql.getTask(conn, k);
    if (row) tasks.push(row);
  }
  const last = deps.lastFinished;
  if (last) {
    if (!last.has(instance.file)) last.set(instance.file, await sql.lastFinishedTask(conn, instance.host, instance.port));
    for (const t of tasks) if (isFinished(t.status) && t.status !== STATUS.quit) last.set(instance.file, t);
  }
  const success = deps.lastSuccess;
  if (success) {
    if (!success.has(instance.file))
      success.set(
        instance.file,
        await sql.lastSuccessfulTask(conn, instance.host, instance.port, isSpiderInstance(instance) ? 0 : undefined),
      );
    for (const t of tasks) if (t.status === STATUS.success) success.set(instance.file, t);
  }
  return { tasks, total, clusterPause };
}

/**
 * The unfinished tasks and the cluster pause in one statement. The pause table is created where it
 * is missing (it then replicates from masters); where it cannot be (a read-only replica whose
 * master has none yet, a user without CREATE), the tasks are read alone and backups go on.
 */
async function readUnfinished(
  conn: Connection,
  own: OwnWrites,
  instance: InstanceConfig,
  problem: Problem,
): Promise<{ tasks: TaskRow[]; total: number; clusterPause: ClusterPause | undefined }> {
  const shard = isSpiderInstance(instance) ? 0 : undefined;
  try {
    return await listUnfinishedTasksAndPause(conn, instance.host, instance.port, shard);
  } catch (err) {
    if (isClusterPauseDenied(err)) {
      // A user granted only the task table still gets its backups (README: Privileges); each tick
      // then costs one statement more, until the grant is given.
      problem(
        `cluster-pause:${instance.file}`,
        { port: instance.port, err: missingPrivilege(err, 'cluster-pause') ?? errorMessage(err) },
        'cannot read the cluster-pause table; a cluster-wide pause is not seen on this instance',
      );
      return { ...(await sql.listUnfinishedTasks(conn, instance.host, instance.port, shard)), clusterPause: undefined };
    }
    if (!isMissingClusterPauseTable(err)) throw err;
  }
  try {
    const target = await own();
    // Not created on a replica whose user may not keep it out of the binary log (the presence
    // says why, once): it arrives by replication once a master has it.
    if ('refused' in target)
      return { ...(await sql.listUnfinishedTasks(conn, instance.host, instance.port, shard)), clusterPause: undefined };
    await target.query(createClusterPauseTable());
    return await listUnfinishedTasksAndPause(conn, instance.host, instance.port, shard);
  } catch (err) {
    // The task table's own absence (no tasks here yet) is the caller's to handle.
    if (conn.broken || (isNoSuchTable(err) && !isMissingClusterPauseTable(err))) throw err;
    problem(
      `cluster-pause:${instance.file}`,
      { port: instance.port, err: errorMessage(err) },
      'cannot create the cluster-pause table; a cluster-wide pause is not seen on this instance',
    );
  }
  return { ...(await sql.listUnfinishedTasks(conn, instance.host, instance.port, shard)), clusterPause: undefined };
}

export type Problem = (key: string, fields: Record<string, unknown>, msg: string) => void;

/**
 * Housekeeping of every instance against one look at the host, taken after all rows were read (a
 * process seen in a row was alive before the row was read) and only when something needs it: an
 * idle host reads no process table. The journal is read after the host (see housekeeping.ts).
 */
/**
 * The instances whose database clock stepped since the daemon's last look (logged, each time), and
 * this look kept for the next one. Judged by the rows just read: no statement of its own.
 */
function clockSteps(deps: CheckDeps, live: readonly Session[]): Set<string> {
  const stepped = new Set<string>();
  const looks = deps.clockLooks;
  if (looks === undefined) return stepped;
  const atMs = performance.now();
  const thresholdS = clockStepThresholdS(deps.config.agent.tickIntervalMs);
  for (const s of live) {
    const look: ClockLook = { atMs, ages: new Map(s.tasks.map((t) => [taskKeyString(t), t.createdAgeS])) };
    const stepS = clockStepS(looks.get(s.instance.file), look);
    looks.set(s.instance.file, look);
    if (stepS === undefined || Math.abs(stepS) <= thresholdS) continue;
    stepped.add(s.instance.file);
    deps.logger.warn(
      { port: s.instance.port, stepS: Math.round(stepS) },
      `the database clock stepped ${stepS > 0 ? '+' : '-'}${formatSeconds(Math.abs(stepS))} against this host's since the last look; ` +
        'expiries and timeouts wait one more look',
    );
  }
  return stepped;
}

async function housekeepAll(
  deps: CheckDeps,
  connections: KeptConnections,
  sessions: Session[],
  records: readonly TaskRecord[],
  watched: readonly TaskKey[],
  problem: Problem,
): Promise<void> {
  const live = sessions.filter((s) => s.conn !== undefined);
  const stepped = clockSteps(deps, live);
  // A record means a supervisor is (or was) at work here: its row may have been overwritten with
  // any status, final ones included.
  const needsHost = records.length > 0 || live.some((s) => s.tasks.some((t) => t.status === STATUS.quit || !isFinished(t.status)));
  if (!needsHost) return;
  const local = buildLocalView(scanHost(), records, hostOf(deps.config));
  let pending: ReadonlySet<string>;
  try {
    pending = pendingJournalKeys(deps.config.agent.stateDir);
  } catch (err) {
    // Without knowing what waits in the journal, housekeeping could fail a task whose result is
    // there: leave the rows alone this round.
    problem('journal', { err: errorMessage(err) }, 'cannot read the journal; housekeeping skipped');
    return;
  }
  await Promise.all(
    live.map(async (s) => {
      const conn = s.conn as Connection;
      try {
        const res = await housekeep({
          conn,
          instance: s.instance,
          tasks: s.tasks,
          local,
          pending,
          killGraceMs: deps.config.backup.killGraceMs,
          clockStepped: stepped.has(s.instance.file),
          logger: deps.logger.child({ port: s.instance.port }),
          events: deps.events,
        });
        if (res.actions.some((a) => a.applied))
          s.tasks = (await readTasks(deps, conn, s.own ?? (() => Promise.resolve(conn)), s.instance, watched, problem)).tasks;
      } catch (err) {
        failSession(connections, s, err);
      }
    }),
  );
  // Records of backups with no process left were handled above (or need nothing): tidy them.
  const dir = hostPaths(deps.config.agent.hostLock).records;
  for (const r of local.stale) {
    try {
      removeRecordIfUnchanged(dir, r);
    } catch {
      // another agent did it
    }
  }
}

/**
 * Deletes rows over the retention age on every master and slave: each time from the CLI, at most
 * every PURGE.everyMs per instance from the daemon (off the tick, see tick.ts). On a connection of
 * its own: `sql_log_bin = 0` must never cover the tick's statements. A failure is a problem logged,
 * never fatal.
 */
export async function purgeAll(
  deps: { config: AgentConfig; logger: Logger; purgedAt?: Map<string, number>; events?: AgentEvents },
  instances: readonly InstanceConfig[],
  problem: Problem,
): Promise<void> {
  const now = Date.now();
  for (const inst of instances) {
    if (isSpiderInstance(inst)) continue;
    const last = deps.purgedAt?.get(inst.file);
    if (last !== undefined && now - last < PURGE.everyMs) continue;
    deps.purgedAt?.set(inst.file, now);
    let conn: Connection | undefined;
    try {
      conn = await connect(inst);
      const n = await purgeOld(conn, deps.logger.child({ port: inst.port }));
      if (n > 0) deps.events?.emit('deleted', { port: inst.port, count: n });
    } catch (err) {
      if (!isNoSuchTable(err))
        problem(
          `purge:${inst.file}`,
          { port: inst.port, err: missingPrivilege(err, 'purge') ?? errorMessage(err) },
          'cannot delete old rows (backups are not affected)',
        );
    } finally {
      await conn?.close();
    }
  }
}

function failSession(connections: KeptConnections, s: Session, err: unknown): void {
  // A host whose table does not exist yet simply has no tasks.
  if (!isNoSuchTable(err)) {
    const missing = missingPrivilege(err, 'tasks');
    s.error = missing === undefined ? errorMessage(err) : `${s.instance.host}:${s.instance.port}: ${missing}`;
    const unreachable = unreachableOf(err);
    if (unreachable !== undefined) s.unreachable = unreachable;
  }
  s.tasks = [];
  connections.failed(s.instance);
  s.conn = undefined;
}

async function runOne(deps: CheckDeps, instance: InstanceConfig, task: TaskRow, wait: boolean): Promise<Outcome> {
  const logger = deps.logger.child({ backupId: task.backupId, port: task.port, shardValue: task.shardValue });
  const key = taskKeyString(task);
  try {
    const started = await startTask(deps.config, instance, task, logger, deps.logFd);
    if (started.kind === 'busy') return { task, status: task.status, note: 'busy' };
    if (started.kind === 'skipped') {
      if (started.retry && deps.backoff) {
        const delayMs = deps.backoff.failed(key, Date.now());
        logger.warn({ reason: started.reason, retryInS: Math.round(delayMs / 1000) }, 'backup not started; trying again later');
      } else {
        logger.info({ reason: started.reason }, 'task not started');
      }
      return { task, status: task.status, note: started.retry ? started.reason : 'skipped' };
    }
    if (deps.backoff?.clear(key)) logger.info('started after backing off');
    deps.events?.emit('started', { task, pid: started.pid, done: started.done });
    if (!wait) return { task, pid: started.pid, status: STATUS.running };
    await started.done;
    return { task, pid: started.pid, status: await finalStatus(instance, task) };
  } catch (err) {
    const error = errorMessage(err);
    logger.error({ err: error }, 'cannot run task');
    return { task, status: 'error', note: error };
  }
}

async function finalStatus(instance: InstanceConfig, task: TaskKey): Promise<string> {
  try {
    const c = await connect(instance);
    try {
      return (await sql.getTask(c, task))?.status ?? 'gone';
    } finally {
      await c.close();
    }
  } catch (err) {
    return `unknown (${errorMessage(err)}; the result waits in the journal)`;
  }
}

const hostOf = (config: AgentConfig) => ({ hostLock: config.agent.hostLock, installDir: config.backup.installDir });
