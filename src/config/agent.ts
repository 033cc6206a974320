import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { parseCommandTemplate } from './command-template.js';
import { parseDuration } from './duration.js';
import { IniReader, readIni } from './ini-file.js';

export const DEFAULT_AGENT_CONFIG = '/etc/spiderbackup/spiderbackup.ini';
/** Host-wide, never under state_dir: a second agent with other settings must find the same lock. */
export const DEFAULT_HOST_LOCK = '/run/lock/spiderbackup/host.lock';

export interface AgentConfig {
  /** The file these settings came from; undefined when defaults are used. */
  file: string | undefined;
  agent: { configDir: string; stateDir: string; hostLock: string; tickIntervalMs: number };
  backup: { installDir: string; remoteCommand: string[]; spiderCommand: string[]; killGraceMs: number };
  schedule: {
    cron: string | undefined;
    waitIntervalMs: number;
    waitConcurrency: number;
    maxFailedPolls: number;
    unclaimedAfterMs: number;
  };
  log: { level: string; file: string | undefined };
  metrics: { listen: string | 'off'; allowRemote: boolean };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/**
 * Loads the agent's own settings. A missing file is fine only when it is the default path (a
 * host that needs no settings); an explicitly given file must exist.
 */
export function loadAgentConfig(file: string | undefined, cwd = process.cwd()): AgentConfig {
  const path = resolve(cwd, file ?? DEFAULT_AGENT_CONFIG);
  if (file === undefined && !existsSync(path)) return agentConfigFrom(new IniReader('(defaults)', {}), undefined, cwd);
  return agentConfigFrom(new IniReader(path, readIni(path)), path, cwd);
}

function agentConfigFrom(ini: IniReader, file: string | undefined, cwd: string): AgentConfig {
  const duration = (section: string, key: string, fallback: string, minMs = 1): number => {
    const text = ini.string(section, key, fallback);
    const ms = parseDuration(text);
    if (ms === undefined) throw ini.invalid(section, key, text, 'must be a duration such as 10s, 1m, 24h (a bare number means seconds)');
    if (ms < minMs) throw ini.invalid(section, key, text, `must be at least ${minMs} ms`);
    return ms;
  };
  const installDir = ini.string('backup', 'install_dir', '/home/mysql/dbbackup-go');
  const template = (key: string, fallback: string): string[] =>
    parseCommandTemplate(ini.string('backup', key, fallback), ini.file, `[backup] ${key}`);

  const level = ini.string('log', 'level', 'info');
  if (!LOG_LEVELS.includes(level)) throw ini.invalid('log', 'level', level, `must be one of ${LOG_LEVELS.join(', ')}`);
  const listen = ini.string('metrics', 'listen', '127.0.0.1:9797');
  const allowRemote = ini.bool('metrics', 'allow_remote', false);
  if (listen !== 'off') checkListen(ini, listen, allowRemote);
  const logFile = ini.optionalString('log', 'file');

  return {
    file,
    agent: {
      configDir: resolve(cwd, ini.string('agent', 'config_dir', cwd)),
      stateDir: resolve(cwd, ini.string('agent', 'state_dir', '/var/lib/spiderbackup')),
      hostLock: resolve(cwd, ini.string('agent', 'host_lock', DEFAULT_HOST_LOCK)),
      tickIntervalMs: duration('agent', 'tick_interval', '10s', 100),
    },
    backup: {
      installDir,
      remoteCommand: template(
        'remote_command',
        '{install_dir}/dbbackup dumpbackup --config {config} --backup-id {backup_id} --shard-value {shard_value}',
      ),
      spiderCommand: template('spider_command', '{install_dir}/dbbackup_main.sh -k {backup_id}'),
      killGraceMs: duration('backup', 'kill_grace', '10s', 0),
    },
    schedule: {
      cron: ini.optionalString('schedule', 'cron'),
      waitIntervalMs: duration('schedule', 'wait_interval', '60s', 10),
      waitConcurrency: ini.int('schedule', 'wait_concurrency', { min: 1, max: 1024, fallback: 16 }),
      maxFailedPolls: ini.int('schedule', 'max_failed_polls', { min: 1, fallback: 120 }),
      unclaimedAfterMs: duration('schedule', 'unclaimed_after', '30m'),
    },
    log: { level, file: logFile === undefined ? undefined : resolve(cwd, logFile) },
    metrics: { listen, allowRemote },
  };
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

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m) throw new ConfigError('(metrics)', 'listen', listen, 'must be host:port');
  return { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port: Number(m[2]) };
}
