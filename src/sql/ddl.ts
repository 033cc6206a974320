// DDL for the task table. The shape is fixed by the platform (SPEC §2): do not change columns.
// Every identifier here is a constant or derived from an integer, never from outside input.

export const SCHEMA = 'infodba_schema';
export const TABLE = 'global_backup';

const COLUMNS = `
  ServerName varchar(20) NOT NULL DEFAULT '',
  Wrapper varchar(20) NOT NULL DEFAULT '',
  Host varchar(60) NOT NULL DEFAULT '',
  Port int(4) NOT NULL DEFAULT 0,
  ShardValue int(11) NOT NULL,
  BackupId varchar(40) NOT NULL DEFAULT '',
  BackupStatus varchar(30) NOT NULL DEFAULT '',
  TaskPid int NOT NULL DEFAULT -1,
  CreatedAt timestamp NOT NULL DEFAULT '0000-00-00 00:00:00',
  UpdatedAt timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (BackupId,Host,Port,ShardValue)`;

/**
 * Secondary indexes for the agent's statements (an idle tick's read, the purge). Added to tables
 * `schedule` creates; tables the old tool created work without them (README: the ALTER TABLE).
 */
export const INDEXES = `,
  KEY idx_host_port_status (Host, Port, BackupStatus),
  KEY idx_created_at (CreatedAt)`;

export function createSchema(): string {
  return `CREATE DATABASE IF NOT EXISTS ${SCHEMA}`;
}

/** The local InnoDB table of remote masters and slaves. */
export function createLocalTable(): string {
  return `CREATE TABLE IF NOT EXISTS ${SCHEMA}.${TABLE} (${COLUMNS}${INDEXES}
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='shard_key "ShardValue"'`;
}

/** tdbctl's name (mysql.servers) for the master of shard i: SPT0, SPT1 … */
const SHARD_SERVER_PREFIX = 'SPT';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * How a Spider table spreads its rows over the shards: partition pt<i> holds the rows whose
 * `column` MOD `shards` is i and lives in `database`.`table` on server SPT<i>, the master of
 * shard i. The names are the callers' constants; anything else is refused rather than quoted.
 */
export function spiderPartitions(p: { column: string; shards: number; database: string; table: string }): string {
  if (!Number.isInteger(p.shards) || p.shards < 1) throw new RangeError(`shard count must be a positive integer, got ${p.shards}`);
  for (const name of [p.column, p.database, p.table]) {
    if (!IDENTIFIER.test(name)) throw new RangeError(`not a plain identifier: ${JSON.stringify(name)}`);
  }
  const parts: string[] = [];
  for (let i = 0; i < p.shards; i++) {
    parts.push(
      `PARTITION pt${i} VALUES IN (${i}) COMMENT = 'database "${p.database}", table "${p.table}", server "${SHARD_SERVER_PREFIX}${i}"'`,
    );
  }
  return `PARTITION BY LIST (${p.column} MOD ${p.shards}) (
  ${parts.join(',\n  ')}
)`;
}

/**
 * The Spider table of a spider node: a row with ShardValue s is stored on the master of shard
 * s mod N. TSpider wants the shard_key comment; MariaDB's Spider rejects it (error 12501), hence
 * the flag.
 */
export function createSpiderTable(shards: number, withShardKeyComment: boolean): string {
  const comment = withShardKeyComment ? ` COMMENT='shard_key "ShardValue"'` : '';
  return `CREATE TABLE IF NOT EXISTS ${SCHEMA}.${TABLE} (${COLUMNS}${INDEXES}
) ENGINE=SPIDER DEFAULT CHARSET=utf8mb4${comment}
${spiderPartitions({ column: 'ShardValue', shards, database: SCHEMA, table: TABLE })}`;
}

export const PRESENCE_TABLE = 'spiderbackup_presence';

/** The binlog archiver's state on a shard master's presence row (README "Binlog archive"); added to older tables. */
const PRESENCE_ARCHIVE_COLUMNS = [
  'ArchiveLagS int NULL',
  "ArchiveGtid varchar(1024) NOT NULL DEFAULT ''",
  "ArchiveNote varchar(512) NOT NULL DEFAULT ''",
];

/** A presence table made by an agent before the archive: its columns added (instantly: nullable or with defaults, at the end). */
/**
 * Agent presence (SPEC §5): one row per instance an agent serves, keyed by (Host, Port), written
 * on the instance itself every tick. A master's row replicates to its replica under another key,
 * so replication never carries one instance's presence onto another's. Not part of the task
 * table, whose shape older tools rely on.
 */
export function createPresenceTable(): string {
  return `CREATE TABLE IF NOT EXISTS ${SCHEMA}.${PRESENCE_TABLE} (
  Host varchar(60) NOT NULL DEFAULT '',
  Port int NOT NULL DEFAULT 0,
  ShardValue int NOT NULL DEFAULT 0,
  Role varchar(20) NOT NULL DEFAULT '',
  AgentVersion varchar(32) NOT NULL DEFAULT '',
  AgentHost varchar(255) NOT NULL DEFAULT '',
  AgentPid int NOT NULL DEFAULT 0,
  TickIntervalMs int NOT NULL DEFAULT 0,
  Paused tinyint NOT NULL DEFAULT 0,
  PauseReason varchar(255) NOT NULL DEFAULT '',
  PauseUntil varchar(40) NOT NULL DEFAULT '',
  RunningBackupId varchar(40) NOT NULL DEFAULT '',
  RunningSince varchar(40) NOT NULL DEFAULT '',
  RunningBytes bigint NULL,
  LastTick timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  ${PRESENCE_ARCHIVE_COLUMNS.join(',\n  ')},
  PRIMARY KEY (Host, Port)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
}

export function addPresenceArchiveColumns(): string {
  return `ALTER TABLE ${SCHEMA}.${PRESENCE_TABLE} ${PRESENCE_ARCHIVE_COLUMNS.map((c) => `ADD COLUMN IF NOT EXISTS ${c}`).join(', ')}`;
}

export const CANCEL_TABLE = 'spiderbackup_cancel';

/**
 * Cancel records (SPEC §5 `cancel`): one row per backup id and instance, keyed by the (Host, Port)
 * it was written for and written on that instance itself. A master's row replicates to its
 * replica under the master's key, so it never collides with the row `cancel` writes on the
 * replica directly; an agent honours any row of the backup id in its local table.
 */
export function createCancelTable(): string {
  return `CREATE TABLE IF NOT EXISTS ${SCHEMA}.${CANCEL_TABLE} (
  BackupId varchar(40) NOT NULL DEFAULT '',
  Host varchar(60) NOT NULL DEFAULT '',
  Port int NOT NULL DEFAULT 0,
  CancelledBy varchar(255) NOT NULL DEFAULT '',
  CancelledAt timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (BackupId, Host, Port)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
}

export const MANIFEST_TABLE = 'spiderbackup_manifest';

/**
 * A built-in runner's verdict on its own output (README "Verifying a backup"): one row per backup
 * id and instance, keyed by the (Host, Port) it was written for and written on that instance
 * itself, so a master's row reaching its replica by replication never collides with the
 * replica's own. `verify` on the spider node reads them.
 */
export function createManifestTable(): string {
  return `CREATE TABLE IF NOT EXISTS ${SCHEMA}.${MANIFEST_TABLE} (
  BackupId varchar(40) NOT NULL DEFAULT '',
  Host varchar(60) NOT NULL DEFAULT '',
  Port int NOT NULL DEFAULT 0,
  ShardValue int NOT NULL DEFAULT 0,
  Role varchar(20) NOT NULL DEFAULT '',
  Tool varchar(32) NOT NULL DEFAULT '',
  Dir varchar(1024) NOT NULL DEFAULT '',
  Bytes bigint NOT NULL DEFAULT 0,
  ManifestSha256 char(64) NOT NULL DEFAULT '',
  Verdict varchar(10) NOT NULL DEFAULT '',
  VerdictDetail varchar(1024) NOT NULL DEFAULT '',
  Manifest mediumtext NOT NULL,
  CheckedAt timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (BackupId, Host, Port)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
}

export const RESTORE_POINT_TABLE = 'spiderbackup_restore_point';

const RESTORE_POINT_COLUMNS = `
  Name varchar(40) NOT NULL,
  ShardValue int NOT NULL,
  ServerName varchar(20) NOT NULL DEFAULT '',
  Host varchar(60) NOT NULL DEFAULT '',
  Port int NOT NULL DEFAULT 0,
  Gtid varchar(4096) NOT NULL DEFAULT '',
  Shards int NOT NULL DEFAULT 0,
  TakenAt datetime(3) NOT NULL,
  PauseMs int NOT NULL DEFAULT 0,
  AcquireMs int NOT NULL DEFAULT 0,
  HoldMs int NOT NULL DEFAULT 0,
  SpiderNodes int NOT NULL DEFAULT 0,
  InternalXa tinyint NOT NULL DEFAULT 1,
  Status varchar(20) NOT NULL DEFAULT 'taken',
  PRIMARY KEY (Name, ShardValue)`;

/**
 * Restore points (one row per point and shard; Status 'taken', or 'opted-out' for a backup
 * scheduled with --no-restore-point), stored on the shard master whose position the row
 * holds; replicas receive it by replication. A master's rows arrive on its replica unchanged: the
 * replica never writes this table itself.
 */
export function createLocalRestorePointTable(): string {
  return `CREATE TABLE IF NOT EXISTS ${SCHEMA}.${RESTORE_POINT_TABLE} (${RESTORE_POINT_COLUMNS}
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
}

/** The spider node's view of the restore points: the row of shard s lives on shard s's master. */
export function createSpiderRestorePointTable(shards: number): string {
  return `CREATE TABLE IF NOT EXISTS ${SCHEMA}.${RESTORE_POINT_TABLE} (${RESTORE_POINT_COLUMNS}
) ENGINE=SPIDER DEFAULT CHARSET=utf8mb4
${spiderPartitions({ column: 'ShardValue', shards, database: SCHEMA, table: RESTORE_POINT_TABLE })}`;
}

export const CLUSTER_PAUSE_TABLE = 'spiderbackup_cluster_pause';

/**
 * The cluster-wide pause (`pause --cluster`), on every instance, keyed by the (Host, Port) it was
 * written for: a master's row reaches its replica by replication under the master's key, and a
 * row written on the replica itself (so a broken channel cannot hide a pause) has the replica's
 * key, so the two never collide. The agent obeys the most recently set row of its local table
 * (a `resume --cluster` is a row that ended at once), times by the database clock.
 */
export function createClusterPauseTable(): string {
  return `CREATE TABLE IF NOT EXISTS ${SCHEMA}.${CLUSTER_PAUSE_TABLE} (
  Host varchar(60) NOT NULL DEFAULT '',
  Port int NOT NULL DEFAULT 0,
  PauseUntil timestamp NOT NULL DEFAULT '0000-00-00 00:00:00',
  Reason varchar(255) NOT NULL DEFAULT '',
  SetBy varchar(64) NOT NULL DEFAULT '',
  SetAt timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (Host, Port)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;
}
