// The shared vocabulary of a task: its key and row as every capability sees them, the key as one
// string, and the limits of SPEC §2 (ages by the database clock).

export interface TaskKey {
  backupId: string;
  host: string;
  port: number;
  shardValue: number;
}

export interface TaskRow extends TaskKey {
  serverName: string;
  wrapper: string;
  status: string;
  taskPid: number;
  createdAt: string;
  updatedAt: string;
  /** Seconds since CreatedAt / UpdatedAt by the database clock. */
  createdAgeS: number;
  updatedAgeS: number;
}

/** BackupStatus is varchar(30): cut longer reasons ourselves so strict sql_mode does not refuse them. */
export const STATUS_WIDTH = 30;

/** One string per task, for maps and file names. */
export const taskKeyString = (k: TaskKey): string => `${k.backupId}\u0000${k.host}\u0000${k.port}\u0000${k.shardValue}`;

export const LIMITS = {
  /** A running backup is killed and failed after this long (SPEC: 48 h). */
  runningTimeoutS: 48 * 3600,
  /** init/replicated nobody picked up are given up after this long (SPEC: 12 h). */
  waitingExpiryS: 12 * 3600,
  /** Rows older than this are deleted (SPEC: 30 days). */
  retentionDays: 30,
  /**
   * A row `running` with TaskPid -1 (written by the old tool, or by replication) is left alone
   * this long before it is "no pid": the old tool records its pid right after its claim.
   */
  claimGraceS: 60,
} as const;
