// Statements only the spider node runs (schedule, --wait, query), one function each, fully
// parameterised. The instance-side statements on the task table are in tasks.ts.
import type { Queryable } from '../db/connect.js';
import { SCHEMA, TABLE } from './ddl.js';
import { SELECT_TASK, toTask, type RawRow } from './tasks.js';
import type { TaskRow } from '../task/task.js';

const T = `${SCHEMA}.${TABLE}`;

/** MariaDB's error for a variable the server does not have (a Spider build without it). */
export const ER_UNKNOWN_SYSTEM_VARIABLE = 1193;
/** Spider: a partition's remote table is missing (seen when the table is first opened). */
export const ER_SPIDER_REMOTE_TABLE_NOT_FOUND = 12702;
/** Spider: its connection to a shard broke (the shard restarted); the next statement connects anew. */
export const ER_SPIDER_REMOTE_SERVER_GONE_AWAY = 12701;

/**
 * Keeps Spider's connections to the shards for the rest of this session. By default Spider drops
 * them at the end of every autocommit statement, so each statement through a table of N
 * partitions connects to N shards again; a `--wait` that reads through one kept session connects
 * once per shard instead of once per shard per round.
 */
export async function keepShardConnections(q: Queryable): Promise<void> {
  await q.query('SET SESSION spider_conn_recycle_mode = 2');
}

/**
 * Rows of a backup id on shard 0 only. The spider master's own row always has ShardValue 0, so
 * every task set has a row there; the condition prunes the statement to one partition.
 */
export async function countShardZeroTasks(q: Queryable, backupId: string): Promise<number> {
  const rows = (await q.query(`SELECT COUNT(*) AS n FROM ${T} WHERE BackupId = ? AND ShardValue = 0`, [backupId])) as {
    n: number | string;
  }[];
  return Number(rows[0]?.n ?? 0);
}

/**
 * For a session that only reads (the rounds of `--wait`): Spider then sends each shard the SELECT
 * alone instead of wrapping it in START TRANSACTION … COMMIT, a third of the round trips. The
 * reads of one round need no common snapshot: each task's row is read once, on its own shard.
 */
export async function readWithoutShardTransactions(q: Queryable): Promise<void> {
  await q.query('SET SESSION spider_semi_trx = 0');
}

/**
 * The master-side copies of a backup id's replica tasks (`replicated` rows written through the
 * Spider table, stored on each shard's master): what a replica's own row is compared with.
 */
export async function listReplicaCopies(q: Queryable, backupId: string): Promise<TaskRow[]> {
  const rows = (await q.query(`${SELECT_TASK} WHERE BackupId = ? AND Wrapper = 'mysql_slave'`, [backupId])) as RawRow[];
  return rows.map(toTask);
}
