// `pause --cluster` / `resume --cluster`: the pause row written on every instance of the cluster,
// each under its own (Host, Port). Masters' rows reach their replicas by replication; replicas
// are also written directly, so a broken channel cannot hide a pause (or a resume) from them, with
// sql_log_bin = 0 (or not at all where the user may not). A failure on one instance is reported
// and does not stop the others.
import { errorMessage } from '../errors.js';
import { withConnection, type Connection } from '../db/connect.js';
import { createClusterPauseTable } from '../sql/ddl.js';
import { isMissingClusterPauseTable, writeClusterPause } from '../sql/cluster-pause.js';
import { withUnloggedConnection } from '../sql/unlogged.js';
import { mapLimited } from './reach.js';
import { clusterMembers, type Member } from './members.js';
import type { ClusterSession } from './session.js';

export interface PauseWrite {
  member: Member;
  error?: string;
}

/**
 * forMs 0: resume (the row ends now, and being the newest, lifts any older pause row). Whether or
 * not this node is the primary; each instance is written on a connection of its own.
 */
export async function writeClusterPauseEverywhere(
  session: ClusterSession,
  forMs: number,
  reason: string,
  by: string,
  concurrency: number,
): Promise<PauseWrite[]> {
  const members = clusterMembers(await session.servers(), session.target);
  const forS = Math.ceil(forMs / 1000);
  const write = async (member: Member): Promise<PauseWrite> => {
    try {
      if (member.role !== 'slave') {
        await withConnection(member.endpoint, (c) => writeOn(c, member, forS, reason, by), session.connectOptions);
        return { member };
      }
      // A replica's own row stays out of its binary log: a local write there is an errant
      // transaction to GTID-strict replication after a switch-over.
      const r = await withUnloggedConnection(member.endpoint, (c) => writeOn(c, member, forS, reason, by), session.connectOptions);
      return 'refused' in r ? { member, error: `${r.refused}; its master's row reaches it by replication` } : { member };
    } catch (err) {
      return { member, error: errorMessage(err) };
    }
  };
  // Masters (and spider nodes) first: the table they create replicates, so a replica gets it
  // without needing CREATE itself.
  const first = await mapLimited(
    members.filter((m) => m.role !== 'slave'),
    concurrency,
    write,
  );
  const replicas = await mapLimited(
    members.filter((m) => m.role === 'slave'),
    concurrency,
    write,
  );
  return [...first, ...replicas];
}

async function writeOn(c: Connection, m: Member, forS: number, reason: string, by: string): Promise<void> {
  try {
    await writeClusterPause(c, m.host, m.port, forS, reason, by);
  } catch (err) {
    if (!isMissingClusterPauseTable(err)) throw err;
    await c.query(createClusterPauseTable());
    await writeClusterPause(c, m.host, m.port, forS, reason, by);
  }
}
