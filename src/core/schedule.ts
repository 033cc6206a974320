// `schedule` (SPEC §3): on the primary spider node only, write the task set of a new backup id
// through the Spider table in one statement, creating the table where it is missing.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { instanceName } from '../config/instance.js';
import { connect, withConnection, type Connection } from '../db.js';
import { errorMessage, OperationError } from '../errors.js';
import { createLocalTable, createSchema, createSpiderTable } from '../sql/ddl.js';
import * as sql from '../sql/tasks.js';
import type { ServerRow } from '../sql/servers.js';
import { validateBackupId } from './backup-id.js';
import { endpointOf, mapLimited, readControl } from './cluster-view.js';
import { resolveSpiderTarget, type SpiderTarget } from './spider-target.js';
import { buildTaskSet, type TaskSet } from './task-set.js';

export interface ScheduleOptions {
  files?: string[];
  backupId?: string;
}

export type ScheduleResult =
  | { kind: 'not-primary'; spider: string }
  | { kind: 'scheduled'; backupId: string; tasks: number; target: SpiderTarget; set: TaskSet; createdTables: string[] };

export interface ScheduleDeps {
  config: AgentConfig;
  logger: Logger;
}

export async function runSchedule(deps: ScheduleDeps, opts: ScheduleOptions): Promise<ScheduleResult> {
  const { config } = deps;
  const backupId = opts.backupId === undefined ? randomUUID() : validateBackupId(opts.backupId);
  const target = resolveSpiderTarget(config, opts.files);
  const spiderName = instanceName(target.spider);
  const logger = deps.logger.child({ backupId, port: target.spider.port });
  const control = await readControl(target.tdbctl);
  if (!control.primary) {
    logger.info({ spider: spiderName }, 'this spider node is not the tdbctl primary; nothing scheduled');
    return { kind: 'not-primary', spider: spiderName };
  }
  const set = buildTaskSet(control.servers, target.spider, backupId);
  const createdTables = await ensureTables(config, set, target, logger);

  const spider = await connect(target.spider);
  try {
    // Refuse a duplicate id before writing; this read also proves every shard answers.
    const existing = await sql.countBackupTasks(spider, backupId);
    if (existing > 0) throw new OperationError(`backup id ${backupId} already exists (${existing} tasks); choose another id`);
    try {
      await sql.insertTaskRows(spider, set.tasks);
    } catch (err) {
      throw await compensate(spider, set, backupId, err, logger);
    }
  } finally {
    await spider.close();
  }
  logger.info({ tasks: set.tasks.length, shards: set.shards, slaves: set.slaves.length }, 'global backup scheduled');
  return { kind: 'scheduled', backupId, tasks: set.tasks.length, target, set, createdTables };
}

/**
 * The local table on every shard master (it replicates to the slaves), then the Spider table on
 * the spider node, each only where missing.
 */
async function ensureTables(config: AgentConfig, set: TaskSet, target: SpiderTarget, logger: Logger): Promise<string[]> {
  const created: string[] = [];
  await mapLimited(set.masters, config.schedule.waitConcurrency, (m: ServerRow) =>
    withConnection(endpointOf(m), async (c) => {
      if (await sql.tableExists(c)) return;
      await c.query(createSchema());
      await c.query(createLocalTable());
      created.push(`${m.serverName} ${m.host}:${m.port}`);
    }),
  );
  await withConnection(target.spider, async (c) => {
    if (await sql.tableExists(c)) return;
    // TSpider wants the shard_key comment; MariaDB's Spider rejects it (error 12501).
    const tspider = /tspider/i.test(await sql.serverVersion(c));
    await c.query(createSchema());
    await c.query(createSpiderTable(set.shards, tspider));
    created.push(`spider ${instanceName(target.spider)} (Spider table over ${set.shards} shards)`);
  });
  for (const t of created) logger.info({ table: t }, 'created infodba_schema.global_backup');
  return created;
}

/** A write that failed part-way: cancel, shard by shard, whatever of this id was written. */
async function compensate(spider: Connection, set: TaskSet, backupId: string, cause: unknown, logger: Logger): Promise<OperationError> {
  const cancelled: string[] = [];
  const unreachable: string[] = [];
  for (let shard = 0; shard < set.shards; shard++) {
    try {
      const n = await sql.cancelShardTasks(spider, backupId, shard);
      if (n > 0) cancelled.push(`SPT${shard}: ${n}`);
    } catch (err) {
      unreachable.push(`SPT${shard} (${errorMessage(err)})`);
    }
  }
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
