import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { parseCommandTemplate } from './command-template.js';
import { formatConfigDuration, MAX_TIMER_MS, parseDuration } from './duration.js';
import { IniReader, readIni, type IniSections } from './ini-file.js';
import { DEFAULT_AGENT_CONFIG } from './defaults.js';
import { REPOSITORY_KEYS, repositoryConfig, type RepositoryConfig } from './repository.js';

export { DEFAULT_AGENT_CONFIG };
/** Host-wide, never under state_dir: a second agent with other settings must find the same lock. */
export const DEFAULT_HOST_LOCK = '/run/lock/spiderbackup/host.lock';
/** Where bk-dbm installs mysql-crond (its docs: `cd /home/mysql/mysql-crond`). */
export const DEFAULT_MYSQL_CROND = '/home/mysql/mysql-crond/mysql-crond';

export interface AgentConfig {
  /** The file these settings came from; undefined when defaults are used. */
  file: string | undefined;
  agent: { configDir: string; stateDir: string; tickIntervalMs: number; hostLock: string };
  backup: { installDir: string; remoteCommand: string[]; spiderCommand: string[]; killGraceMs: number; runner: BackupRunner };
  schedule: {
    cron: string | undefined;
    waitIntervalMs: number;
    waitConcurrency: number;
    maxFailedPolls: number;
    unclaimedAfterMs: number;
    /** `[schedule] statement_timeout`: the longest any statement of a spider-side command may take. */
    statementTimeoutMs: number;
    /** `[schedule] tdbctl`: the control node's address; unset: the spider node's host at its port + 1000. */
    tdbctl: { host: string; port: number } | undefined;
    /** Every complete global backup gets a restore point (README: restore-point). */
    restorePoints: boolean;
    /** `[schedule] restore_point_interval`: the primary spider node's agent takes a point this often; undefined: off. */
    restorePointIntervalMs: number | undefined;
  };
  log: { level: string; file: string | undefined };
  metrics: { listen: string | 'off'; allowRemote: boolean };
  /** `[migration] mysql_crond`: the old scheduler's binary, whose job list is checked; undefined: off. */
  migration: { mysqlCrond: string | undefined };
  /** `[repository]`: where backups go off the host; undefined without the section (backups stay in BackupDir). */
  repository: RepositoryConfig | undefined;
  /** `[archive]`: every shard master this host serves has its binlogs copied into the repository (README "Binlog archive"). */
  archive: ArchiveConfig;
  /** `[restore]`: how this host's agent carries out the restore tasks of `spiderbackup restore` (README "Restoring a cluster"). */
  restore: RestoreConfig;
  /** `[drill]`: the primary spider node's agent restores the newest backup onto scratch instances on a schedule. */
  drill: DrillConfig;
  /**
   * Unknown sections and keys of the file, one line each, naming file, section and key. The
   * loader only returns them: the CLI prints them on stderr, the daemon logs them.
   */
  warnings: string[];
}

export interface ArchiveConfig {
  /** `binlogs`: on by default when [repository] exists; `on` without it is a ConfigError. */
  binlogs: boolean;
  /** The server id the archiver reads each master's binlog with (as a replica would). */
  serverId: number;
  /** The recovery point objective: the archive lag the alert compares with. */
  maxLagMs: number;
  /** Where the streams land before they are cut into segments (default state_dir/binlog-spool). */
  spoolDir: string;
}

export interface RestoreConfig {
  /** Stops a target instance before a physical restore's copy-back ({port}, {host} …); unset: physical restores are refused here. */
  stopCommand: string[] | undefined;
  /** Starts it again on the restored datadir. */
  startCommand: string[] | undefined;
  /** Where fetched backups are unpacked and prepared (default state_dir/restore-staging). */
  stagingDir: string;
  /** `spiderbackup restore`: how long a written task may wait for its agent to claim it. */
  claimTimeoutMs: number;
}

export interface DrillConfig {
  /** When the drill runs (5 or 6 fields, as [schedule] cron); undefined: no drill. */
  cron: string | undefined;
  /** The target file of the scratch instances (it must say "scratch": true). */
  target: string | undefined;
  /** One value read through the restored spider node after the restore. */
  checkSql: string | undefined;
  /** What check_sql must return; unset: any value but an error. */
  expect: string | undefined;
  /** Leave the restored data until the next drill (else the scratch instances are wiped after it). */
  keep: boolean;
}

/**
 * The archiver's default replica server id: near the top of the range, far above the ids
 * installers give real servers (bk-dbm derives them from address and port), since a master drops
 * the older of two replication connections with one id.
 */
export const DEFAULT_ARCHIVE_SERVER_ID = 4294960001;

export interface AgentConfigOptions {
  /** Unknown sections and keys are a ConfigError instead of warnings (`--strict`). */
  strict?: boolean;
}

/** `command`: the templates below; the others: the built-in runner (src/runner/) runs that tool. */
export const BACKUP_RUNNERS = ['command', 'mariadb-backup', 'mariadb-dump'] as const;
export type BackupRunner = (typeof BACKUP_RUNNERS)[number];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

type KeySpec =
  | { kind: 'string'; default: string }
  /** A string that is unset unless given. */
  | { kind: 'optional' }
  /** Resolved against the working directory; `default: undefined` means unset unless given. */
  | { kind: 'path'; default: string | undefined }
  | { kind: 'duration'; default: string; min: number; max: number }
  | { kind: 'int'; default: number; min: number; max?: number }
  | { kind: 'bool'; default: boolean }
  | { kind: 'choice'; default: string; choices: readonly string[] }
  | { kind: 'command'; default: string };

/**
 * Every section and key of the agent's INI, with its default and bounds. The loader reads values
 * only through it, and whatever is not in it is reported as unknown, so a key is added here or
 * nowhere. Duration maximums keep every wait far below MAX_TIMER_MS.
 */
export const AGENT_SCHEMA = {
  agent: {
    config_dir: { kind: 'path', default: '.' },
    state_dir: { kind: 'path', default: '/var/lib/spiderbackup' },
    tick_interval: { kind: 'duration', default: '10s', min: 100, max: 24 * HOUR },
    host_lock: { kind: 'path', default: DEFAULT_HOST_LOCK },
  },
  backup: {
    install_dir: { kind: 'string', default: '/home/mysql/dbbackup-go' },
    remote_command: {
      kind: 'command',
      default: '{install_dir}/dbbackup dumpbackup --config {config} --backup-id {backup_id} --shard-value {shard_value}',
    },
    spider_command: { kind: 'command', default: '{install_dir}/dbbackup_main.sh -k {backup_id}' },
    kill_grace: { kind: 'duration', default: '10s', min: 0, max: HOUR },
    runner: { kind: 'choice', default: 'command', choices: BACKUP_RUNNERS },
  },
  schedule: {
    cron: { kind: 'optional' },
    wait_interval: { kind: 'duration', default: '20s', min: 10, max: HOUR },
    wait_concurrency: { kind: 'int', default: 16, min: 1, max: 1024 },
    max_failed_polls: { kind: 'int', default: 120, min: 1 },
    unclaimed_after: { kind: 'duration', default: '10m', min: 1, max: 48 * HOUR },
    statement_timeout: { kind: 'duration', default: '30s', min: 100, max: HOUR },
    tdbctl: { kind: 'optional' },
    restore_points: { kind: 'bool', default: true },
    // Off unless given; read by restorePointInterval (a duration, or `off`).
    restore_point_interval: { kind: 'optional' },
  },
  log: {
    level: { kind: 'choice', default: 'info', choices: LOG_LEVELS },
    file: { kind: 'path', default: undefined },
  },
  metrics: {
    listen: { kind: 'string', default: '127.0.0.1:9797' },
    allow_remote: { kind: 'bool', default: false },
  },
  migration: {
    mysql_crond: { kind: 'string', default: DEFAULT_MYSQL_CROND },
  },
  archive: {
    binlogs: { kind: 'optional' },
    server_id: { kind: 'int', default: DEFAULT_ARCHIVE_SERVER_ID, min: 1, max: 4294967295 },
    max_lag: { kind: 'duration', default: '60s', min: 1000, max: 24 * HOUR },
    spool_dir: { kind: 'path', default: undefined },
  },
  restore: {
    stop_command: { kind: 'optional' },
    start_command: { kind: 'optional' },
    staging_dir: { kind: 'path', default: undefined },
    claim_timeout: { kind: 'duration', default: '60s', min: 1000, max: 24 * HOUR },
  },
  drill: {
    cron: { kind: 'optional' },
    target: { kind: 'path', default: undefined },
    check_sql: { kind: 'optional' },
    expect: { kind: 'optional' },
    keep: { kind: 'bool', default: false },
  },
  // Read by config/repository.ts, which checks them together (the type decides which are needed).
  repository: Object.fromEntries(REPOSITORY_KEYS.map((k) => [k, { kind: 'optional' }])) as Record<
    (typeof REPOSITORY_KEYS)[number],
    { kind: 'optional' }
  >,
} as const satisfies Record<string, Record<string, KeySpec>>;

type Schema = typeof AGENT_SCHEMA;
type SectionName = keyof Schema;
type KeyName<S extends SectionName> = keyof Schema[S] & string;
type ValueOf<K> = K extends { kind: 'duration' | 'int' }
  ? number
  : K extends { kind: 'bool' }
    ? boolean
    : K extends { kind: 'command' }
      ? string[]
      : K extends { kind: 'optional' } | { kind: 'path'; default: undefined }
        ? string | undefined
        : string;

/**
 * Loads the agent's own settings. A missing file is fine only when it is the default path (a
 * host that needs no settings); an explicitly given file must exist.
 */
export function loadAgentConfig(file: string | undefined, cwd = process.cwd(), options: AgentConfigOptions = {}): AgentConfig {
  const path = resolve(cwd, file ?? DEFAULT_AGENT_CONFIG);
  if (file === undefined && !existsSync(path)) return agentConfigFrom(new IniReader('(defaults)', {}), undefined, cwd, []);
  const sections = readIni(path);
  const unknown = unknownEntries(sections);
  if (options.strict && unknown.length > 0) throw strictError(path, unknown);
  return agentConfigFrom(
    new IniReader(path, sections),
    path,
    cwd,
    unknown.map((u) => `${path}: ${warningOf(u)}`),
  );
}

function agentConfigFrom(ini: IniReader, file: string | undefined, cwd: string, warnings: string[]): AgentConfig {
  const v = <S extends SectionName, K extends KeyName<S>>(section: S, key: K): ValueOf<Schema[S][K]> =>
    readKey(ini, section, key, AGENT_SCHEMA[section][key] as KeySpec, cwd) as ValueOf<Schema[S][K]>;

  const listen = v('metrics', 'listen');
  const allowRemote = v('metrics', 'allow_remote');
  const repository = repositoryConfig(ini, cwd);
  if (listen !== 'off') checkListen(ini, listen, allowRemote);

  return {
    file,
    agent: {
      configDir: v('agent', 'config_dir'),
      stateDir: v('agent', 'state_dir'),
      tickIntervalMs: v('agent', 'tick_interval'),
      hostLock: v('agent', 'host_lock'),
    },
    backup: {
      installDir: v('backup', 'install_dir'),
      remoteCommand: v('backup', 'remote_command'),
      spiderCommand: v('backup', 'spider_command'),
      killGraceMs: v('backup', 'kill_grace'),
      runner: v('backup', 'runner') as BackupRunner,
    },
    schedule: {
      cron: v('schedule', 'cron'),
      waitIntervalMs: v('schedule', 'wait_interval'),
      waitConcurrency: v('schedule', 'wait_concurrency'),
      maxFailedPolls: v('schedule', 'max_failed_polls'),
      unclaimedAfterMs: v('schedule', 'unclaimed_after'),
      statementTimeoutMs: v('schedule', 'statement_timeout'),
      tdbctl: tdbctlAddress(ini, v('schedule', 'tdbctl')),
      restorePoints: v('schedule', 'restore_points'),
      restorePointIntervalMs: restorePointInterval(ini, v('schedule', 'restore_point_interval')),
    },
    log: { level: v('log', 'level'), file: v('log', 'file') },
    metrics: { listen, allowRemote },
    migration: { mysqlCrond: optionalPath(v('migration', 'mysql_crond'), cwd) },
    repository,
    archive: {
      binlogs: archiveOn(ini, v('archive', 'binlogs'), repository !== undefined),
      serverId: v('archive', 'server_id'),
      maxLagMs: v('archive', 'max_lag'),
      spoolDir: v('archive', 'spool_dir') ?? resolve(v('agent', 'state_dir'), 'binlog-spool'),
    },
    restore: {
      stopCommand: optionalCommand(ini, 'restore', 'stop_command', v('restore', 'stop_command')),
      startCommand: optionalCommand(ini, 'restore', 'start_command', v('restore', 'start_command')),
      stagingDir: v('restore', 'staging_dir') ?? resolve(v('agent', 'state_dir'), 'restore-staging'),
      claimTimeoutMs: v('restore', 'claim_timeout'),
    },
    drill: drillConfig(ini, {
      cron: v('drill', 'cron'),
      target: v('drill', 'target'),
      checkSql: v('drill', 'check_sql'),
      expect: v('drill', 'expect'),
      keep: v('drill', 'keep'),
    }),
    warnings,
  };
}

function optionalCommand(ini: IniReader, section: string, key: string, text: string | undefined): string[] | undefined {
  return text === undefined ? undefined : parseCommandTemplate(text, ini.file, `[${section}] ${key}`);
}

/** A drill needs both when and onto what; one without the other is a mistake, not a default. */
function drillConfig(ini: IniReader, d: DrillConfig): DrillConfig {
  if (d.cron !== undefined && d.target === undefined)
    throw ini.invalid('drill', 'cron', d.cron, 'needs [drill] target (the scratch instances)');
  if (d.target !== undefined && d.cron === undefined) throw ini.invalid('drill', 'target', d.target, 'needs [drill] cron (when to run)');
  if (d.expect !== undefined && d.checkSql === undefined) throw ini.invalid('drill', 'expect', d.expect, 'needs [drill] check_sql');
  return d;
}

/** `[archive] binlogs`: on by default with a repository, off without; `on` needs one. */
function archiveOn(ini: IniReader, text: string | undefined, hasRepository: boolean): boolean {
  if (text === undefined) return hasRepository;
  const on = ini.bool('archive', 'binlogs', hasRepository);
  if (on && !hasRepository) throw ini.invalid('archive', 'binlogs', text, 'needs a [repository] section to archive into');
  return on;
}

function readKey(ini: IniReader, section: string, key: string, spec: KeySpec, cwd: string): unknown {
  switch (spec.kind) {
    case 'string':
      return ini.string(section, key, spec.default);
    case 'optional':
      return ini.optionalString(section, key);
    case 'path': {
      const text = spec.default === undefined ? ini.optionalString(section, key) : ini.string(section, key, spec.default);
      return text === undefined ? undefined : resolve(cwd, text);
    }
    case 'duration':
      return duration(ini, section, key, spec);
    case 'int':
      return ini.int(section, key, { min: spec.min, ...(spec.max !== undefined ? { max: spec.max } : {}), fallback: spec.default });
    case 'bool':
      return ini.bool(section, key, spec.default);
    case 'choice': {
      const text = ini.string(section, key, spec.default);
      if (!spec.choices.includes(text)) throw ini.invalid(section, key, text, `must be one of ${spec.choices.join(', ')}`);
      return text;
    }
    case 'command':
      return parseCommandTemplate(ini.string(section, key, spec.default), ini.file, `[${section}] ${key}`);
  }
}

function duration(ini: IniReader, section: string, key: string, spec: { default: string; min: number; max: number }): number {
  const text = ini.string(section, key, spec.default);
  const ms = parseDuration(text);
  if (ms === undefined) throw ini.invalid(section, key, text, 'must be a duration such as 10s, 1m, 24h (a bare number means seconds)');
  if (ms < spec.min) throw ini.invalid(section, key, text, `must be at least ${formatConfigDuration(spec.min)}`);
  // Even a schema mistake must not let a value past what a timer can wait.
  const max = Math.min(spec.max, MAX_TIMER_MS);
  if (ms > max) throw ini.invalid(section, key, text, `must be at most ${formatConfigDuration(max)}`);
  return ms;
}

interface Unknown {
  /** `[section] key`, `[section]`, or a key written before any section. */
  label: string;
  /** Set for a key, so a strict error can name it like any bad value. */
  key: { value: unknown } | undefined;
  problem: string;
  /** "; did you mean …?" or empty. */
  hint: string;
}

/** Sections and keys the schema does not know, in file order. */
function unknownEntries(sections: IniSections): Unknown[] {
  const found: Unknown[] = [];
  const schema: Record<string, Record<string, KeySpec>> = AGENT_SCHEMA;
  for (const [name, body] of Object.entries(sections as Record<string, unknown>)) {
    if (!isTable(body)) {
      // `ini` puts a key written before any [section] at the top level.
      found.push({ label: name, key: { value: body }, problem: 'key outside any section', hint: '' });
      continue;
    }
    const known = Object.hasOwn(schema, name) ? schema[name] : undefined;
    if (known === undefined) {
      found.push({
        label: `[${name}]`,
        key: undefined,
        problem: 'unknown section',
        hint: didYouMean(name, Object.keys(schema), (s) => `[${s}]`),
      });
      continue;
    }
    for (const [key, value] of Object.entries(body)) {
      if (Object.hasOwn(known, key)) continue;
      // `ini` nests [agent.x] under [agent].
      if (isTable(value)) found.push({ label: `[${name}.${key}]`, key: undefined, problem: 'unknown section', hint: '' });
      else
        found.push({
          label: `[${name}] ${key}`,
          key: { value },
          problem: 'unknown key',
          hint: didYouMean(key, Object.keys(known), (k) => k),
        });
    }
  }
  return found;
}

const warningOf = (u: Unknown): string => `${u.label}: ${u.problem} (ignored)${u.hint}`;

function strictError(file: string, unknown: Unknown[]): ConfigError {
  const [first, ...rest] = unknown as [Unknown, ...Unknown[]];
  const more = rest.length === 0 ? '' : `; also ${rest.map((u) => `${u.label}: ${u.problem}`).join(', ')}`;
  const problem = `${first.problem} (refused in strict mode)${first.hint}${more}`;
  if (first.key === undefined) return new ConfigError(file, undefined, undefined, `${first.label}: ${problem}`);
  return new ConfigError(file, first.label, first.key.value, problem);
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A typo hint: a known name within two edits (or differing only in case). */
function didYouMean(name: string, known: readonly string[], show: (k: string) => string): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    const d = k.toLowerCase() === name.toLowerCase() ? 0 : editDistance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best === undefined ? '' : `; did you mean ${show(best)}?`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] as number;
}

function checkListen(ini: IniReader, listen: string, allowRemote: boolean): void {
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m) throw ini.invalid('metrics', 'listen', listen, 'must be host:port or off');
  const host = (m[1] as string).replace(/^\[(.*)\]$/, '$1');
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw ini.invalid('metrics', 'listen', listen, 'port must be 1-65535');
  const loopback = host === 'localhost' || host === '::1' || host.startsWith('127.');
  if (!loopback && !allowRemote) {
    throw ini.invalid('metrics', 'listen', listen, 'is not a loopback address; set [metrics] allow_remote = true to expose it');
  }
}

/** `host:port` of the tdbctl node ([schedule] tdbctl); a bad value names file, key and value. */
function tdbctlAddress(ini: IniReader, text: string | undefined): { host: string; port: number } | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const m = /^\s*\[?([^\s\]]+?)\]?:(\d{1,5})\s*$/.exec(text);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535)
    throw ini.invalid('schedule', 'tdbctl', text, 'must be host:port of the tdbctl node, e.g. 10.0.0.5:26000');
  return { host: m[1] as string, port };
}

/** Automatic restore points: at least 1 s apart (each blocks commits for a moment), at most a day; empty or `off`: none. */
export const RESTORE_POINT_INTERVAL = { min: 1000, max: 24 * HOUR } as const;

function restorePointInterval(ini: IniReader, text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '' || text.trim().toLowerCase() === 'off') return undefined;
  const ms = parseDuration(text);
  const key = 'restore_point_interval';
  if (ms === undefined)
    throw ini.invalid('schedule', key, text, 'must be a duration such as 15m, 1h (a bare number means seconds), or off');
  if (ms < RESTORE_POINT_INTERVAL.min)
    throw ini.invalid('schedule', key, text, `must be at least ${formatConfigDuration(RESTORE_POINT_INTERVAL.min)}`);
  if (ms > RESTORE_POINT_INTERVAL.max)
    throw ini.invalid('schedule', key, text, `must be at most ${formatConfigDuration(RESTORE_POINT_INTERVAL.max)}`);
  return ms;
}

/** A path that `off` or an empty value turns off. */
function optionalPath(text: string, cwd: string): string | undefined {
  const t = text.trim();
  return t === '' || t.toLowerCase() === 'off' ? undefined : resolve(cwd, t);
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m) throw new ConfigError('(metrics)', 'listen', listen, 'must be host:port');
  return { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}
