// Statements on the presence table (see ddl.ts createPresenceTable): the agent's one write per
// tick, and the reads of whoever shows the cluster. Ages by the database clock.
import { errnoOf, type Queryable } from '../db/connect.js';
import { PRESENCE_TABLE, SCHEMA } from './ddl.js';

const T = `${SCHEMA}.${PRESENCE_TABLE}`;

export interface Presence {
  host: string;
  port: number;
  shardValue: number;
  role: string;
  agentVersion: string;
  agentHost: string;
  agentPid: number;
  tickIntervalMs: number;
  paused: boolean;
  pauseReason: string;
  /** ISO time, '' when not paused. */
  pauseUntil: string;
  runningBackupId: string;
  runningSince: string;
  runningBytes: number | null;
  /**
   * On a shard master whose binlogs this agent archives: the archiver's state (columns added by
   * addPresenceArchiveColumns). null: not archived by this agent, the columns emptied where the
   * table has them (a row an archiving agent wrote before must not say so after).
   */
  archive?: PresenceArchive | null;
}

export interface PresenceArchive {
  /** Seconds behind the master; null until known. */
  lagS: number | null;
  /** The newest GTID state archived. */
  gtid: string;
  /** What is wrong (a problem, a gap, a purge warning, a lag over max_lag); '' when nothing. */
  note: string;
}

export interface PresenceRow extends Presence {
  /** Seconds since the agent's last tick, by the database clock. */
  ageS: number;
}

export const PRESENCE_COLUMNS = [
  'Host',
  'Port',
  'ShardValue',
  'Role',
  'AgentVersion',
  'AgentHost',
  'AgentPid',
  'TickIntervalMs',
  'Paused',
  'PauseReason',
  'PauseUntil',
  'RunningBackupId',
  'RunningSince',
  'RunningBytes',
] as const;

const values = (p: Presence): unknown[] => [
  p.host,
  p.port,
  p.shardValue,
  p.role,
  p.agentVersion.slice(0, 32),
  p.agentHost.slice(0, 255),
  p.agentPid,
  p.tickIntervalMs,
  p.paused ? 1 : 0,
  p.pauseReason.slice(0, 255),
  p.pauseUntil,
  p.runningBackupId,
  p.runningSince,
  p.runningBytes,
];

/** Written only by an agent that archives the instance's binlogs: a table of an older agent lacks them until then. */
export const PRESENCE_ARCHIVE = ['ArchiveLagS', 'ArchiveGtid', 'ArchiveNote'] as const;

/**
 * One statement: the row is created or refreshed, LastTick by the database clock. With `archive`
 * (or null: emptied), its columns too (an older table: ER_BAD_FIELD_ERROR, for the caller to add
 * them, or to write the row without them).
 */
export async function upsertPresence(q: Queryable, p: Presence): Promise<void> {
  const a = p.archive === null ? { lagS: null, gtid: '', note: '' } : p.archive;
  const columns = a ? [...PRESENCE_COLUMNS, ...PRESENCE_ARCHIVE] : [...PRESENCE_COLUMNS];
  const params = a ? [...values(p), a.lagS, a.gtid.slice(0, 1024), a.note.slice(0, 512)] : values(p);
  const updates = columns
    .slice(2)
    .map((c) => `${c} = VALUES(${c})`)
    .join(', ');
  await q.query(
    `INSERT INTO ${T} (${columns.join(', ')}, LastTick) VALUES (${columns.map(() => '?').join(', ')}, NOW())
     ON DUPLICATE KEY UPDATE ${updates}, LastTick = NOW()`,
    params,
  );
}

/** MariaDB's "Unknown column": a presence table from before the archive columns. */
export const isUnknownColumn = (err: unknown): boolean => errnoOf(err) === 1054;

export interface RawPresence {
  Host: string;
  Port: number;
  ShardValue: number;
  Role: string;
  AgentVersion: string;
  AgentHost: string;
  AgentPid: number;
  TickIntervalMs: number;
  Paused: number;
  PauseReason: string;
  PauseUntil: string;
  RunningBackupId: string;
  RunningSince: string;
  RunningBytes: number | string | null;
  AgeS: number | string;
  ArchiveLagS?: number | string | null;
  ArchiveGtid?: string;
  ArchiveNote?: string;
}

/** The presence of one instance as stored on it (or undefined: its agent never wrote one). */
export async function getPresence(q: Queryable, host: string, port: number): Promise<PresenceRow | undefined> {
  const read = (columns: readonly string[]) =>
    q.query(`SELECT ${columns.join(', ')}, TIMESTAMPDIFF(SECOND, LastTick, NOW()) AS AgeS FROM ${T} WHERE Host = ? AND Port = ?`, [
      host,
      port,
    ]);
  // A table of an agent from before the archive columns: read without them.
  const rows = (await read([...PRESENCE_COLUMNS, ...PRESENCE_ARCHIVE]).catch((err: unknown) => {
    if (isUnknownColumn(err)) return read(PRESENCE_COLUMNS);
    throw err;
  })) as RawPresence[];
  const r = rows[0];
  return r ? toPresence(r) : undefined;
}

export function toPresence(r: RawPresence): PresenceRow {
  return {
    host: r.Host,
    port: Number(r.Port),
    shardValue: Number(r.ShardValue),
    role: r.Role,
    agentVersion: r.AgentVersion,
    agentHost: r.AgentHost,
    agentPid: Number(r.AgentPid),
    tickIntervalMs: Number(r.TickIntervalMs),
    paused: Number(r.Paused) === 1,
    pauseReason: r.PauseReason,
    pauseUntil: r.PauseUntil,
    runningBackupId: r.RunningBackupId,
    runningSince: r.RunningSince,
    runningBytes: r.RunningBytes === null ? null : Number(r.RunningBytes),
    ageS: Number(r.AgeS),
    ...archiveOf(r),
  };
}

/** The archive columns when the table has them and an archiver wrote them. */
function archiveOf(r: RawPresence): Pick<Presence, 'archive'> {
  const lag = r.ArchiveLagS ?? null;
  const gtid = r.ArchiveGtid ?? '';
  const note = r.ArchiveNote ?? '';
  if (lag === null && gtid === '' && note === '') return {};
  return { archive: { lagS: lag === null ? null : Number(lag), gtid, note } };
}
