// `cancel <backup-id>` (SPEC §5): stops every unfinished task of a backup id, each on its own
// instance. Master-side rows (spider master, shard masters) are changed through the Spider table by
// their own keys (away from the primary: on the shard master that holds them, the same rows,
// shard-tables.ts); replica rows on the replica itself, never through a master-side copy that
// replication would carry over the replica's row (ROW binlog). First a cancel record is written on
// every instance (ddl.ts createCancelTable), so a task claimed from now on — a replica row that
// arrives by replication later included — is never started (its supervisor checks the record just
// before its claim); then every task is read again (a row claimed before its record was in place,
// such as a replica row that arrived meanwhile, is only seen then), waiting tasks end `quit: no
// process` at once and running ones are set to `quit`, which their host's agent carries out on its
// next tick (kill, then `quit: success`/`fail`). Every change is conditional on the row as it was read.
import { hostname, userInfo } from 'node:os';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { isNoSuchTable, type Connection, type Endpoint } from '../db/connect.js';
import { errorMessage, OperationError } from '../errors.js';
import { insertCancel } from '../sql/cancel.js';
import { createCancelTable, createSchema } from '../sql/ddl.js';
import type { ServerRow } from '../sql/servers.js';
import * as sql from '../sql/tasks.js';
import { withUnloggedConnection } from '../sql/unlogged.js';
import { validateBackupId } from '../task/backup-id.js';
import { initSpiderSession, mapLimited } from './reach.js';
import { endpointOf, type ClusterSession, type ClusterView } from './session.js';
import { shardTablesOf } from './shard-tables.js';
import { isRunnable, REASON, STATUS } from '../task/status.js';
import type { TaskSet } from './task-set.js';
import type { TaskRow } from '../task/task.js';

export interface CancelOptions {
  backupId: string;
}

/** What cancel did to one task. */
export interface TaskOutcome {
  /** The task as listed on the master side (a replica's by its master-side copy). */
  task: TaskRow;
  /**
   * `stopped`: was waiting, now `quit: no process` (or has not arrived, and a record keeps it from
   * starting); `quit`: its agent kills it; `final`: had ended; `unguarded`: has not arrived, and no
   * record of its own keeps it from starting when it does.
   */
  action: 'stopped' | 'quit' | 'final' | 'not-reached' | 'unguarded';
  status?: string;
  error?: string;
}

export type CancelResult =
  /** Every task had already ended: nothing recorded, nothing changed. */
  | { kind: 'ended'; backupId: string; tasks: TaskOutcome[] }
  | {
      kind: 'cancelled';
      backupId: string;
      by: string;
      tasks: TaskOutcome[];
      /** Instances the cancel record could not be written on (their late rows are not protected). */
      problems: string[];
      /** For `--wait`: the task set as the rows have it, with the servers to read. */
      set: TaskSet;
    };

export interface CancelDeps {
  config: AgentConfig;
  logger: Logger;
}

/** Not final: waiting, running, or a quit its agent has not carried out yet. */
export const isUnfinished = (status: string): boolean => isRunnable(status) || status === STATUS.running || status === STATUS.quit;

const keyOf = (t: { host: string; port: number }) => `${t.host}:${t.port}`;

/** A replica's task as read on the replica itself. */
interface ReplicaRead {
  /** Its master-side copy (the row `schedule` wrote; it stays `replicated`). */
  copy: TaskRow;
  server?: ServerRow;
  /** Undefined when it has not arrived yet (or `error` says why it could not be read). */
  row?: TaskRow;
  error?: string;
}

/** One look at the backup id's tasks: the master-side rows through the spider node, each replica's on the replica. */
interface Look {
  all: TaskRow[];
  masterSide: TaskRow[];
  replicaSide: ReplicaRead[];
}

/**
 * Any spider node. The first record goes on the primary spider node (whose agent runs the spider
 * master's task): away from it, directly, with mysql.servers' credentials; when it cannot be
 * written, nothing is changed. `--wait` follows on the session's connections.
 */
export async function runCancel(deps: CancelDeps, session: ClusterSession, opts: CancelOptions): Promise<CancelResult> {
  const backupId = validateBackupId(opts.backupId, 'backup id');
  const { config } = deps;
  const tables = await shardTablesOf(session, config.schedule.waitConcurrency);
  const servers = tables.servers;
  const pool = session.connections;
  const logger = deps.logger.child({ backupId });
  const primary = primaryRecordPlace(session, tables.view);
  const primaryKey = 'missing' in primary ? undefined : keyOf(primary);
  const masters = servers.filter((s) => s.wrapper.toLowerCase() === 'mysql');
  const slaves = servers.filter((s) => s.wrapper.toLowerCase() === 'mysql_slave');
  const slaveByKey = new Map(slaves.map((s) => [keyOf(s), s]));
  const masterByKey = new Map(masters.map((s) => [keyOf(s), s]));
  const look = async (): Promise<Look> => {
    const all = await tables
      .rows((c) => sql.listTasks(c, { backupId }), true)
      .catch((err: unknown) => {
        if (isNoSuchTable(err)) return [];
        throw err;
      });
    // A replica's row is read on the replica: its master-side copy stays `replicated` for ever.
    const replicaSide = await mapLimited(
      all.filter((t) => t.wrapper === 'mysql_slave'),
      config.schedule.waitConcurrency,
      async (copy): Promise<ReplicaRead> => {
        const server = slaveByKey.get(keyOf(copy));
        if (!server) return { copy, error: `${keyOf(copy)} is not in tdbctl's mysql.servers as a mysql_slave` };
        try {
          const row = await pool.use(endpointOf(server), (c) => sql.getTask(c, copy), { retry: true });
          return row ? { copy, server, row } : { copy, server };
        } catch (err) {
          return { copy, server, error: errorMessage(err) };
        }
      },
    );
    return { all, masterSide: all.filter((t) => t.wrapper !== 'mysql_slave'), replicaSide };
  };
  /** The instances a look's tasks run on, the spider node aside (its record is written first). */
  const instancesOf = (l: Look): ServerRow[] => {
    const found = new Map<string, ServerRow>();
    for (const t of l.masterSide) {
      const m = masterByKey.get(keyOf(t));
      if (m && keyOf(m) !== primaryKey) found.set(keyOf(m), m);
    }
    for (const r of l.replicaSide) if (r.server) found.set(keyOf(r.server), r.server);
    return [...found.values()];
  };

  const first = await look();
  if (first.all.length === 0)
    throw new OperationError(`backup id ${backupId}: no such backup (no task of it in infodba_schema.global_backup)`);
  const ended =
    first.masterSide.every((t) => !isUnfinished(t.status)) &&
    first.replicaSide.every((r) => r.row !== undefined && !isUnfinished(r.row.status));
  if (ended) {
    const tasks: TaskOutcome[] = [
      ...first.masterSide.map((t) => ({ task: t, action: 'final' as const, status: t.status })),
      ...first.replicaSide.map((r) => ({ task: r.copy, action: 'final' as const, status: r.row?.status })),
    ];
    return { kind: 'ended', backupId, tasks };
  }

  // The records first: a claim after this sees one, on whichever instance it happens.
  const by = whoAmI();
  const problems: string[] = [];
  if ('missing' in primary) throw new OperationError(`cannot record the cancel of ${backupId}: ${primary.missing}; nothing changed`);
  try {
    await pool.use(
      primary.ep,
      (c) => recordOn(c, backupId, primary.host, primary.port, by, true),
      primary.init ? { init: primary.init } : {},
    );
  } catch (err) {
    throw new OperationError(`cannot record the cancel of ${backupId} on ${primary.name}: ${errorMessage(err)}; nothing changed`);
  }
  // The other spider nodes too, so `list` after a failover still tells a cancel; they run no task
  // of the id, so one that is down is only logged. Away from the primary, no table is created on
  // a node that is not the primary: the record goes only where the table already is.
  const otherSpiders = servers.filter((s) => s.wrapper.toUpperCase() === 'SPIDER' && keyOf(s) !== keyOf(primary));
  const create = !tables.notPrimary;
  /** Instances a record was tried on; those where it is not in place, with why. */
  const tried = new Set<string>([keyOf(primary)]);
  const unguarded = new Map<string, string>();
  const recordAll = (targets: readonly ServerRow[]) =>
    mapLimited(targets, config.schedule.waitConcurrency, async (s) => {
      tried.add(keyOf(s));
      try {
        if (s.wrapper.toLowerCase() !== 'mysql_slave') {
          await pool.use(endpointOf(s), (c) => recordOn(c, backupId, s.host, s.port, by, create || !otherSpiders.includes(s)));
          return;
        }
        // A replica's record is its own, not a task status: kept out of its binary log, on a session
        // of its own (the pool's carries the status writes, which stay binlogged).
        const r = await withUnloggedConnection(
          endpointOf(s),
          (c) => recordOn(c, backupId, s.host, s.port, by, true),
          session.connectOptions,
        );
        if ('refused' in r) {
          unguarded.set(keyOf(s), `no cancel record of its own: ${r.refused}`);
          problems.push(
            `${s.serverName} ${keyOf(s)}: cancel not recorded there (${r.refused}); only its master's record, by replication, ` +
              `keeps a row of ${backupId} arriving later from starting`,
          );
        }
      } catch (err) {
        if (s.wrapper.toUpperCase() === 'SPIDER') {
          logger.warn({ server: s.serverName, instance: keyOf(s), err: errorMessage(err) }, 'cancel not recorded on another spider node');
          return;
        }
        unguarded.set(keyOf(s), `no cancel record on it: ${errorMessage(err)}`);
        problems.push(
          `${s.serverName} ${keyOf(s)}: cancel not recorded (${errorMessage(err)}); a row of ${backupId} reaching it later could start: ` +
            `run cancel again once it is reachable`,
        );
      }
    });
  await recordAll([...instancesOf(first), ...otherSpiders]);

  // A second look, now that the records are in place: a row claimed before its instance's record
  // (a replica row that arrived meanwhile, a row still being scheduled) is seen here and stopped;
  // one claimed later finds the record. A row on an instance that got no record yet gets one and
  // a further look, so each row judged below was read after its instance's record.
  let now: Look;
  for (;;) {
    try {
      now = await look();
    } catch (err) {
      throw new OperationError(
        `the cancel of ${backupId} is recorded, but its tasks could not be read again ` +
          `(${errorMessage(err)}); nothing was stopped: run cancel again`,
      );
    }
    const fresh = instancesOf(now).filter((s) => !tried.has(keyOf(s)));
    if (fresh.length === 0) break;
    await recordAll(fresh);
  }

  const tasks: TaskOutcome[] = [];
  for (const t of now.masterSide) tasks.push(await stop((fn) => tables.writeOn(t.shardValue, fn), t, t));
  await mapLimited(now.replicaSide, config.schedule.waitConcurrency, async (r) => {
    if (r.error !== undefined || !r.server) {
      tasks.push({ task: r.copy, action: 'not-reached', error: r.error ?? 'no server' });
      return;
    }
    if (!r.row) {
      // Not replicated yet, read after the record was written there: the agent finds the record
      // before it claims the row, whenever it arrives. Without a record there, no such promise.
      const why = unguarded.get(keyOf(r.server));
      tasks.push(
        why === undefined
          ? { task: r.copy, action: 'stopped', status: 'not arrived yet (will not start)' }
          : { task: r.copy, action: 'unguarded', status: `not arrived yet (${why})` },
      );
      return;
    }
    const server = r.server;
    tasks.push(await stop((fn) => pool.use(endpointOf(server), fn), r.copy, r.row));
  });
  for (const o of tasks)
    if (o.error !== undefined)
      problems.push(`${o.task.serverName} ${keyOf(o.task)}: not stopped (${o.error}); run cancel again once it is reachable`);
  logger.warn(
    { by, stopped: tasks.filter((o) => o.action === 'stopped').length, quit: tasks.filter((o) => o.action === 'quit').length, problems },
    'backup id cancelled',
  );
  const set: TaskSet = {
    tasks: now.all,
    shards: masters.length,
    masters,
    slaves,
  };
  return { kind: 'cancelled', backupId, by, tasks: sortOutcomes(tasks), problems, set };
}

/** Where the record that must be written goes: the primary spider node (this one, or named by tdbctl). */
type PrimaryPlace =
  { ep: Endpoint; host: string; port: number; name: string; init?: (c: Connection) => Promise<void> } | { missing: string };

function primaryRecordPlace(session: ClusterSession, view: ClusterView): PrimaryPlace {
  const target = session.spider;
  if (!view.notPrimary)
    return { ep: target, host: target.host, port: target.port, name: `the spider node ${session.spiderName}`, init: initSpiderSession };
  const p = view.primarySpider;
  if (!p) return { missing: `${view.notPrimary.message}, and mysql.servers does not list its spider node to record it on` };
  return { ep: endpointOf(p), host: p.host, port: p.port, name: `the primary spider node ${p.serverName} ${keyOf(p)}` };
}

/** `create`: make the table where it is missing (never on a spider node that is not the primary, from elsewhere). */
async function recordOn(c: Connection, backupId: string, host: string, port: number, by: string, create: boolean): Promise<void> {
  try {
    await insertCancel(c, backupId, host, port, by);
  } catch (err) {
    if (!isNoSuchTable(err)) throw err;
    if (!create) return;
    await c.query(createSchema());
    await c.query(createCancelTable());
    await insertCancel(c, backupId, host, port, by);
  }
}

type On = <T>(fn: (c: Connection) => Promise<T>) => Promise<T>;

/**
 * One task, conditional on its row as read: waiting → `quit: no process` (never started), running
 * → `quit` with its pid kept (its agent kills it). A row that changed meanwhile (claimed, ended) is
 * read again and judged anew.
 */
async function stop(on: On, task: TaskRow, observed: TaskRow): Promise<TaskOutcome> {
  let row: TaskRow | undefined = observed;
  try {
    for (let attempt = 0; attempt < 5 && row; attempt++) {
      const r: TaskRow = row;
      if (isRunnable(r.status)) {
        if (await on((c) => sql.endWaitingTask(c, r, REASON.quitNoProcess)))
          return { task, action: 'stopped', status: REASON.quitNoProcess };
      } else if (r.status === STATUS.running) {
        if (await on((c) => sql.updateObserved(c, r, { status: r.status, pid: r.taskPid }, STATUS.quit, r.taskPid)))
          return { task, action: 'quit', status: STATUS.quit };
      } else if (r.status === STATUS.quit) {
        return { task, action: 'quit', status: r.status };
      } else {
        return { task, action: 'final', status: r.status };
      }
      row = await on((c) => sql.getTask(c, r));
    }
    return { task, action: 'not-reached', error: row ? `its row kept changing (now ${row.status})` : 'its row is gone' };
  } catch (err) {
    return { task, action: 'not-reached', error: errorMessage(err) };
  }
}

const sortOutcomes = (ts: TaskOutcome[]) =>
  ts.sort((a, b) => a.task.shardValue - b.task.shardValue || a.task.wrapper.localeCompare(b.task.wrapper) || a.task.port - b.task.port);

/** Who cancelled: the operator's login and this host, as the record's CancelledBy. */
function whoAmI(): string {
  let user = process.env.SUDO_USER ?? '';
  try {
    user ||= userInfo().username;
  } catch {
    user ||= `uid ${process.getuid?.() ?? '?'}`;
  }
  return `${user}@${hostname()}`;
}
