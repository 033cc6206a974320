// What a CLI command needs before it runs: the agent config (its warnings on stderr) and, for the
// commands that log, a logger. Loaded by the commands that use it, never for --help or --version.
import { loadAgentConfig, type AgentConfig } from '../config/agent.js';
import type { AgentLogger } from '../log.js';
import type { GlobalOptions } from './options.js';

/** The agent config for a CLI command; its warnings go to stderr, one line each. */
export function agentConfigFor(opts: GlobalOptions): AgentConfig {
  const config = loadAgentConfig(opts.agentConfig, process.cwd(), { strict: opts.strict === true });
  for (const w of config.warnings) process.stderr.write(`spiderbackup: warning: ${w}\n`);
  return config;
}

/** The agent config and a logger for a CLI command (logs go to stderr; stdout is the output). */
export async function commandContext(opts: GlobalOptions): Promise<{ config: AgentConfig; log: AgentLogger }> {
  const config = agentConfigFor(opts);
  const { createLogger } = await import('../log.js');
  const log = createLogger({ level: config.log.level, file: config.log.file, fd: 2 });
  return { config, log };
}
