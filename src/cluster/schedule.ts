// `schedule` (SPEC §3): on the primary spider node only, write the task set of a new backup id
// through the Spider table in one statement, creating the table where it is missing.
//
// At a thousand shards every statement through the Spider table costs a round trip per shard it
// touches, so the common case touches the shards once: the INSERT itself. The duplicate check
// reads shard 0 only, and the shard masters are connected to only when the spider node lacks the
// table or the INSERT says a shard lacks it.
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { instanceName, type InstanceConfig } from '../config/instance.js';
import { connect, errnoOf, isNoSuchTable, withConnection, type Connection } from '../db/connect.js';
import { errorMessage, OperationError } from '../errors.js';
import { createLocalTable, createSchema, createSpiderTable } from '../sql/ddl.js';
import { countShardZeroTasks, ER_SPIDER_REMOTE_TABLE_NOT_FOUND } from '../sql/spider.js';
import * as sql from '../sql/tasks.js';
import type { ServerRow } from '../sql/servers.js';
import { validateBackupId } from '../task/backup-id.js';
import { initSpiderSession, mapLimited } from './reach.js';
import { commandConnectOptions, endpointOf, NotPrimaryError, type ClusterSession } from './session.js';
import { buildTaskSet, type TaskSet } from './task-set.js';

export interface ScheduleOptions {
  backupId?: string;
}

export interface ScheduleResult {
  backupId: string;
  tasks: number;
  set: TaskSet;
  createdTables: string[];
}

export interface ScheduleDeps {
  config: AgentConfig;
  logger: Logger;
}

/**
 * How long a table created on a shard may still be reported missing: Spider remembers a failed
 * open of its table for spider_table_init_error_interval (1 s by default).
 */
const CREATED_TABLE_GRACE_MS = 5000;
const CREATED_TABLE_RETRY_MS = 250;

/**
 * The spider session is the session's kept connection: `schedule --wait` reads through it, with
 * the Spider connections to the shards the INSERT has just opened. Not the primary: NotPrimaryError.
 */
export async function runSchedule(deps: ScheduleDeps, session: ClusterSession, opts: ScheduleOptions): Promise<ScheduleResult> {
  const { config } = deps;
  const backupId = opts.backupId === undefined ? randomUUID() : validateBackupId(opts.backupId);
  const logger = deps.logger.child({ backupId, port: session.spider.port });
  let servers: ServerRow[];
  try {
    servers = await session.primaryServers();
  } catch (err) {
    if (err instanceof NotPrimaryError)
      logger.info({ spider: err.spider }, 'this spider node is not the tdbctl primary; nothing scheduled');
    throw err;
  }
  const set = buildTaskSet(servers, session.spider, backupId);
  const createdTables = await session.connections.use(
    session.spider,
    (spider) => schedule(config, set, session.spider, spider, backupId, logger),
    { init: initSpiderSession },
  );
  for (const t of createdTables) logger.info({ table: t }, 'created infodba_schema.global_backup');
  logger.info({ tasks: set.tasks.length, shards: set.shards, slaves: set.slaves.length }, 'global backup scheduled');
  return { backupId, tasks: set.tasks.length, set, createdTables };
}

async function schedule(
  config: AgentConfig,
  set: TaskSet,
  target: InstanceConfig,
  spider: Connection,
  backupId: string,
  logger: Logger,
): Promise<string[]> {
  const created: string[] = [];
  const spiderTable = await sql.tableExists(spider);
  if (!spiderTable) {
    created.push(...(await createMasterTables(config, set)));
    // TSpider wants the shard_key comment; MariaDB's Spider rejects it (error 12501).
    const tspider = /tspider/i.test(await sql.serverVersion(spider));
    await spider.query(createSchema());
    await spider.query(createSpiderTable(set.shards, tspider));
    created.push(`spider ${instanceName(target)} (Spider table over ${set.shards} shards)`);
  }
  // A shard master that lacks the table is found by Spider refusing the statement (before the
  // INSERT writes anything); only then are the masters connected to, and the statement tried again.
  let shardTablesMade = !spiderTable;
  let deadline = 0;
  const recover = async (err: unknown): Promise<boolean> => {
    if (!isShardTableMissing(err)) return false;
    if (!shardTablesMade) {
      shardTablesMade = true;
      const made = await createMasterTables(config, set);
      created.push(...made);
      deadline = Date.now() + CREATED_TABLE_GRACE_MS;
      return made.length > 0;
    }
    if (Date.now() > deadline) return false;
    await delay(CREATED_TABLE_RETRY_MS);
    return true;
  };
  for (;;) {
    try {
      await refuseDuplicate(spider, backupId);
    } catch (err) {
      if (await recover(err)) continue;
      throw err;
    }
    try {
      await sql.insertTaskRows(spider, set.tasks);
      return created;
    } catch (err) {
      if (await recover(err)) continue;
      throw await compensate(config, target, set, backupId, err, logger);
    }
  }
}

/**
 * Shard 0 only, so the check reads one partition instead of all of them. Every task set has a row
 * there (the spider master's, ShardValue 0), and the set is written in one statement that Spider
 * applies on every shard or on none; why that is sound is in the README (schedule).
 */
async function refuseDuplicate(spider: Connection, backupId: string): Promise<void> {
  if ((await countShardZeroTasks(spider, backupId)) === 0) return;
  const existing = await sql.countBackupTasks(spider, backupId);
  throw new OperationError(`backup id ${backupId} already exists (${existing} tasks); choose another id`);
}

/** Spider's own error when it first opens the table, or the shard's, passed through, once it has. */
function isShardTableMissing(err: unknown): boolean {
  return errnoOf(err) === ER_SPIDER_REMOTE_TABLE_NOT_FOUND || isNoSuchTable(err);
}

/** The local table on every shard master where it is missing (it replicates to the slaves). */
async function createMasterTables(config: AgentConfig, set: TaskSet): Promise<string[]> {
  const created: string[] = [];
  await mapLimited(set.masters, config.schedule.waitConcurrency, (m: ServerRow) =>
    withConnection(
      endpointOf(m),
      async (c) => {
        if (await sql.tableExists(c)) return;
        await c.query(createSchema());
        await c.query(createLocalTable());
        created.push(`${m.serverName} ${m.host}:${m.port}`);
      },
      commandConnectOptions(config.schedule.statementTimeoutMs),
    ),
  );
  return created;
}

/**
 * A write that failed part-way: cancel, shard by shard, whatever of this id was written. On a
 * session of its own: the INSERT's may be what broke (the spider node restarted mid-statement).
 */
async function compensate(
  config: AgentConfig,
  target: InstanceConfig,
  set: TaskSet,
  backupId: string,
  cause: unknown,
  logger: Logger,
): Promise<OperationError> {
  const cancelled: string[] = [];
  const unreachable: string[] = [];
  let spider: Connection | undefined;
  try {
    spider = await connect(target, commandConnectOptions(config.schedule.statementTimeoutMs));
    await initSpiderSession(spider);
  } catch (err) {
    unreachable.push(`spider ${instanceName(target)} (${errorMessage(err)})`);
  }
  for (let shard = 0; spider && shard < set.shards; shard++) {
    try {
      const n = await sql.cancelShardTasks(spider, backupId, shard);
      if (n > 0) cancelled.push(`SPT${shard}: ${n}`);
    } catch (err) {
      unreachable.push(`SPT${shard} (${errorMessage(err)})`);
    }
  }
  await spider?.close();
  logger.error({ err: errorMessage(cause), cancelled, unreachable }, 'schedule failed part-way; written tasks cancelled');
  return new OperationError(
    `schedule of ${backupId} failed: ${errorMessage(cause)}. ` +
      (cancelled.length ? `Tasks already written were set to cancel (${cancelled.join(', ')}). ` : 'No task was left runnable. ') +
      (unreachable.length
        ? `Could not reach ${unreachable.join(', ')}: any task of this id written there before it failed must be set to cancel by hand. `
        : '') +
      `Check with: spiderbackup query --BackupId ${backupId}`,
  );
}
