// `spiderbackup pause --for <duration>`: this host's agent starts nothing new for a while.
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import { errorMessage, OperationError } from '../../errors.js';
import { formatDuration } from '../../format.js';
import { PAUSE_MEANING, type PauseState } from '../../state/pause.js';
import { print } from '../render/table.js';
import { parseForDuration, type GlobalOptions, type Register } from '../options.js';

export const register: Register = (program, setExit) => {
  program
    .command('pause')
    .description(`Pause this host's agent for a while ("skip tonight's backup"): ${PAUSE_MEANING}.`)
    .requiredOption('--for <duration>', 'how long, e.g. 24h, 90m, 2d', parseForDuration)
    .option('--reason <text>', 'why; shown by status and in the log')
    .option('--cluster', "every agent of the cluster (run on a spider node; -c: the spider node's ini)")
    .addHelpText(
      'after',
      '\nBackups already running go on. The pause ends by itself; `spiderbackup resume` ends it early. It survives daemon restarts.',
    )
    .action(async (opts: { for: number; reason?: string; cluster?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      setExit(opts.cluster ? await clusterPauseCommand(g, opts.for, opts.reason ?? '') : await pauseCommand(g, opts.for, opts.reason));
    });
};

async function pauseCommand(g: GlobalOptions, forMs: number, reason: string | undefined): Promise<number> {
  const config = (await import('../context.js')).agentConfigFor(g);
  const state = await writePauseOrFail(config, forMs, reason);
  print(`Paused until ${state.until} (${formatDuration(forMs)}): ${PAUSE_MEANING}.`);
  print('Backups already running go on. End it early with: spiderbackup resume');
  const { daemonLockHolder } = await import('../../state/daemon-lock-holder.js');
  if (!(await daemonLockHolder(config.agent.hostLock)).held) print('Note: the daemon is not running; the pause applies when it starts.');
  return 0;
}

/** `pause --cluster` (forMs > 0) and `resume --cluster` (forMs 0): one line per instance; 1 if any was not written. */
export async function clusterPauseCommand(g: GlobalOptions, forMs: number, reason: string): Promise<number> {
  const { agentConfigFor, withClusterSession } = await import('../context.js');
  const config = agentConfigFor(g);
  const { writeClusterPauseEverywhere } = await import('../../cluster/pause.js');
  return withClusterSession(config, g.config, async (session) => {
    const results = await writeClusterPauseEverywhere(session, forMs, reason, who() ?? '', config.schedule.waitConcurrency);
    for (const r of results) {
      const m = r.member;
      print(`  ${m.serverName} ${m.host}:${m.port} (${m.role}): ${r.error === undefined ? 'written' : `NOT written: ${r.error}`}`);
    }
    const failed = results.filter((r) => r.error !== undefined).length;
    const what =
      forMs > 0
        ? `Cluster paused for ${formatDuration(forMs)} on ${results.length - failed} of ${results.length} instances: ` +
          "no new backup starts from their agents' next tick; running backups go on. End it early with: spiderbackup resume --cluster"
        : `Cluster pause lifted on ${results.length - failed} of ${results.length} instances; backups start again from the next tick.`;
    print(what);
    if (failed > 0)
      print(`${failed} instance(s) not written (see above): their agents still see the previous state, unless replication brings it.`);
    return failed > 0 ? 1 : 0;
  });
}

/** Who asked, for the audit trail in status (the operator behind sudo, not root). */
export function who(): string | undefined {
  if (process.env.SUDO_USER) return process.env.SUDO_USER;
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

async function writePauseOrFail(config: AgentConfig, forMs: number, reason: string | undefined): Promise<PauseState> {
  const { pauseFile, writePause } = await import('../../state/pause.js');
  try {
    return writePause(config.agent.stateDir, forMs, reason, who());
  } catch (err) {
    throw new OperationError(`cannot write ${pauseFile(config.agent.stateDir)}: ${errorMessage(err)} (run as the daemon's user or root)`);
  }
}
