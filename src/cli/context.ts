// What a CLI command needs before it runs: the agent config (its warnings on stderr), for the
// commands that log a logger, and for the spider-side ones their cluster session. Loaded by the
// commands that use it, never for --help or --version.
import type { ClusterSession, NotPrimaryError } from '../cluster/session.js';
import { loadAgentConfig, type AgentConfig } from '../config/agent.js';
import type { AgentLogger } from '../log.js';
import type { GlobalOptions } from './options.js';
import { print } from './render/table.js';

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

/** What a spider-side command prints, and exits with, when tdbctl says this node is not the primary. */
export type OnNotPrimary = (err: NotPrimaryError) => number;

/**
 * `schedule` runs on every spider node (from cron, say): elsewhere than on the primary there is
 * nothing to do, and that is no failure. The message names the primary.
 */
export const nothingToDo: OnNotPrimary = (err) => {
  print(`${err.message}; nothing to do.`);
  return 0;
};

/**
 * A spider-side command that truly needs the primary fails elsewhere, on stderr (stdout stays
 * empty, so `--format json | jq` never sees prose), naming the primary to run it on. (query, list,
 * cancel, verify and restore-plan answer on any spider node; this stays their guard.)
 */
export const runOnPrimary =
  (command: string): OnNotPrimary =>
  (err) => {
    process.stderr.write(`spiderbackup: ${command}: ${err.message}; run it there\n`);
    return 1;
  };

/**
 * Runs a spider-side command in its cluster session: opened once for the whole command (loaded
 * here, not with the program), closed when it ends. Commands check their own arguments first, so
 * that a bad one is named before any problem with the instance configs the session reads. A
 * command that answered away from the primary says so on stderr, once, naming the primary.
 */
export async function withClusterSession(
  config: AgentConfig,
  files: readonly string[] | undefined,
  fn: (session: ClusterSession) => Promise<number>,
  onNotPrimary: OnNotPrimary = nothingToDo,
): Promise<number> {
  const { openClusterSession, NotPrimaryError } = await import('../cluster/session.js');
  const session = openClusterSession(config, files, (line) => process.stderr.write(`spiderbackup: ${line}\n`));
  try {
    return await fn(session);
  } catch (err) {
    if (err instanceof NotPrimaryError) return onNotPrimary(err);
    throw err;
  } finally {
    await session.close();
  }
}
