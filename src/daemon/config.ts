// The agent config as the daemon uses it: the shared loader plus the checks only the daemon needs
// (the cron expression), and the comparison a reload acts on.
import { loadAgentConfig, type AgentConfig, type AgentConfigOptions } from '../config/agent.js';
import { ConfigError } from '../errors.js';
import { cronProblem } from './cron.js';

/** The config's `warnings` (unknown sections and keys) are for the caller to log. */
export function loadDaemonConfig(file: string | undefined, options: AgentConfigOptions = {}): AgentConfig {
  const config = loadAgentConfig(file, process.cwd(), options);
  const cron = config.schedule.cron;
  if (cron !== undefined) {
    const problem = cronProblem(cron);
    if (problem !== undefined) throw new ConfigError(config.file ?? '(defaults)', '[schedule] cron', cron, `not a valid cron expression: ${problem}`);
  }
  return config;
}

export interface ReloadPlan {
  config: AgentConfig;
  /** Settings that only a restart can change; the old values are kept. */
  kept: string[];
  tickInterval: boolean;
  cron: boolean;
  metrics: boolean;
  logFile: boolean;
  logLevel: boolean;
}

/**
 * What a reload changes. state_dir holds the lock and the journal the running supervisors write
 * to, so it cannot move under a running daemon.
 */
export function planReload(old: AgentConfig, next: AgentConfig): ReloadPlan {
  const kept: string[] = [];
  let config = next;
  if (next.agent.stateDir !== old.agent.stateDir) {
    kept.push(`[agent] state_dir stays ${old.agent.stateDir} until a restart (asked: ${next.agent.stateDir})`);
    config = { ...next, agent: { ...next.agent, stateDir: old.agent.stateDir } };
  }
  return {
    config,
    kept,
    tickInterval: next.agent.tickIntervalMs !== old.agent.tickIntervalMs,
    cron: next.schedule.cron !== old.schedule.cron,
    metrics: next.metrics.listen !== old.metrics.listen || next.metrics.allowRemote !== old.metrics.allowRemote,
    logFile: next.log.file !== old.log.file,
    logLevel: next.log.level !== old.log.level,
  };
}
