// Statements on the presence table (see ddl.ts createPresenceTable): the agent's one write per
// tick, and the reads of whoever shows the cluster. Ages by the database clock.
import type { Queryable } from '../db/connect.js';
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

/** One statement: the row is created or refreshed, LastTick by the database clock. */
export async function upsertPresence(q: Queryable, p: Presence): Promise<void> {
  const updates = PRESENCE_COLUMNS.slice(2)
    .map((c) => `${c} = VALUES(${c})`)
    .join(', ');
  await q.query(
    `INSERT INTO ${T} (${PRESENCE_COLUMNS.join(', ')}, LastTick) VALUES (${PRESENCE_COLUMNS.map(() => '?').join(', ')}, NOW())
     ON DUPLICATE KEY UPDATE ${updates}, LastTick = NOW()`,
    values(p),
  );
}

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
}

/** The presence of one instance as stored on it (or undefined: its agent never wrote one). */
export async function getPresence(q: Queryable, host: string, port: number): Promise<PresenceRow | undefined> {
  const rows = (await q.query(
    `SELECT ${PRESENCE_COLUMNS.join(', ')}, TIMESTAMPDIFF(SECOND, LastTick, NOW()) AS AgeS FROM ${T} WHERE Host = ? AND Port = ?`,
    [host, port],
  )) as RawPresence[];
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
  };
}
