// What a loaded copy keeps of its source that the new instance must not: the source's backup task
// rows (a shard instance's local task table) and the presence rows of the source's agents. Then
// its GTID state, so that the replay leaves a master's @@gtid_binlog_pos at the point's GTID (the
// replayed events keep the source's GTIDs) and a replica can follow it with MASTER_USE_GTID.
import { errnoOf, type Queryable } from '../db/connect.js';
import { setSqlLogBin } from '../sql/tasks.js';
import { deleteAllTaskRows, deleteOtherPresence, resetMaster, setGtidBinlogState, setGtidSlavePos } from '../sql/recovery.js';

/** Unbinlogged. A spider node's task table is a Spider table (its rows are the shards'): left alone. */
export async function dropSourceRows(db: Queryable, self: { host: string; port: number }, spider: boolean): Promise<number> {
  await setSqlLogBin(db, false);
  try {
    const tasks = spider ? 0 : await deleteAllTaskRows(db);
    return tasks + (await deleteOtherPresence(db, self.host, self.port));
  } finally {
    await setSqlLogBin(db, true);
  }
}

/**
 * The binlog emptied (it holds nothing of the source; the load was unbinlogged) and started at the
 * backup's GTID position, the replay's start; gtid_slave_pos cleared (a replica's is set when it
 * is linked to its new master). `fromGtid` '' (a backup before any transaction): just emptied.
 */
export async function startGtidState(db: Queryable, fromGtid: string): Promise<void> {
  // The serving agent's own presence write can land between the two (it is binlogged on a
  // master): the binlog is then not empty any more, and the pair is tried again.
  for (let attempt = 1; ; attempt++) {
    await resetMaster(db);
    try {
      if (fromGtid !== '') await setGtidBinlogState(db, fromGtid);
      break;
    } catch (err) {
      if (errnoOf(err) !== ER_BINLOG_MUST_BE_EMPTY || attempt >= 5) throw err;
    }
  }
  await setGtidSlavePos(db, '');
}

const ER_BINLOG_MUST_BE_EMPTY = 1956;
