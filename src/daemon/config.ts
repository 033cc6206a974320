// The agent config as the daemon uses it: the shared loader plus the checks only the daemon needs
// (the cron expressions), and the comparison a reload acts on.
import { loadAgentConfig, type AgentConfig, type AgentConfigOptions } from '../config/agent.js';
import { ConfigError } from '../errors.js';
import { cronProblem } from './cron.js';

/** The config's `warnings` (unknown sections and keys) are for the caller to log. */
export function loadDaemonConfig(file: string | undefined, options: AgentConfigOptions = {}): AgentConfig {
  const config = loadAgentConfig(file, process.cwd(), options);
  for (const [key, cron] of [
    ['[schedule] cron', config.schedule.cron],
    ['[drill] cron', config.drill.cron],
  ] as const) {
    if (cron === undefined) continue;
    const problem = cronProblem(cron);
    if (problem !== undefined) throw new ConfigError(config.file ?? '(defaults)', key, cron, `not a valid cron expression: ${problem}`);
  }
  return config;
}

/**
 * How a reload moves the metrics endpoint. `alongside`: the new address can be listened on while
 * the old one still is, so the new listener is started before anything switches. `in-place`: the
 * same port on another host, which the old listener holds; it must close first (and is reopened
 * if the new one cannot listen). `off`: only the old one closes, which cannot fail.
 */
export type MetricsSwitch = 'keep' | 'off' | 'alongside' | 'in-place';

export interface ReloadPlan {
  config: AgentConfig;
  /** Settings that only a restart can change; the old values are kept. */
  kept: string[];
  tickInterval: boolean;
  cron: boolean;
  /** The metrics listener changes (allow_remote alone only changes what the loader accepts). */
  metrics: boolean;
  metricsSwitch: MetricsSwitch;
  logFile: boolean;
  logLevel: boolean;
}

/**
 * What a reload changes. state_dir holds the lock and the journal the running supervisors write
 * to, and the running backups hold host_lock, so neither can move under a running daemon.
 */
export function planReload(old: AgentConfig, next: AgentConfig): ReloadPlan {
  const kept: string[] = [];
  let agent = next.agent;
  if (next.agent.stateDir !== old.agent.stateDir) {
    kept.push(`[agent] state_dir stays ${old.agent.stateDir} until a restart (asked: ${next.agent.stateDir})`);
    agent = { ...agent, stateDir: old.agent.stateDir };
  }
  if (next.agent.hostLock !== old.agent.hostLock) {
    kept.push(`[agent] host_lock stays ${old.agent.hostLock} until a restart (asked: ${next.agent.hostLock})`);
    agent = { ...agent, hostLock: old.agent.hostLock };
  }
  const metricsSwitch = planMetricsSwitch(old.metrics.listen, next.metrics.listen);
  return {
    config: agent === next.agent ? next : { ...next, agent },
    kept,
    tickInterval: next.agent.tickIntervalMs !== old.agent.tickIntervalMs,
    cron: next.schedule.cron !== old.schedule.cron,
    metrics: metricsSwitch !== 'keep',
    metricsSwitch,
    logFile: next.log.file !== old.log.file,
    logLevel: next.log.level !== old.log.level,
  };
}

export function planMetricsSwitch(oldListen: string, nextListen: string): MetricsSwitch {
  if (nextListen === oldListen) return 'keep';
  if (nextListen === 'off') return 'off';
  if (oldListen === 'off') return 'alongside';
  return portOf(oldListen) === portOf(nextListen) ? 'in-place' : 'alongside';
}

const portOf = (listen: string): string | undefined => /:(\d+)$/.exec(listen)?.[1];
