// `spiderbackup status`: what this host's agent sees (from its state files; no database).
import type { Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import { errorMessage } from '../../errors.js';
import type { DaemonStatus } from '../../state/daemon-status.js';
import type { PauseState } from '../../state/pause.js';
import { reportUnread } from '../partial.js';
import { print, renderJson } from '../render/table.js';
import { formatOption, type Format, type GlobalOptions, type Register } from '../options.js';

/** Exit code of `status` when the daemon is not running (as `systemctl status` does). */
export const STATUS_NOT_RUNNING = 3;

export const register: Register = (program, setExit) => {
  program
    .command('status')
    .description(
      'What the agent sees: daemon alive or not, pause, last tick, last error, next scheduled run, instances and their current tasks.',
    )
    .addOption(formatOption())
    .option('--cluster', "on a spider node: every instance of the cluster, its agent, running and last backup (-c: the spider node's ini)")
    .addHelpText(
      'after',
      `\nExit code: 0 when the daemon runs and reaches every instance it serves; ${STATUS_NOT_RUNNING} when it does not run (the\n` +
        'last state it saw is still shown); 1 when it runs but an instance cannot be reached or refuses its login (not\n' +
        'counted while this host or the cluster is paused).\n' +
        'With --cluster: 0 when every agent of the cluster is alive or paused and every instance could be read, 1 otherwise\n' +
        '(what could not be read is named on stderr).',
    )
    .action(async (opts: { format: Format; cluster?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      if (opts.cluster) {
        setExit(await clusterStatusCommand(g, opts.format));
        return;
      }
      const config = (await import('../context.js')).agentConfigFor(g);
      const { renderStatusText } = await import('../render/status-view.js');
      const view = await gatherStatus(config);
      print(opts.format === 'json' ? renderJson(view) : renderStatusText(view, new Date()));
      setExit(statusExitCode(view));
    });
};

/** 3 (daemon down) wins over 1 (an instance down): without the daemon nothing is known now. */
export function statusExitCode(view: { daemon: { running: boolean }; instancesDown: readonly unknown[] }): number {
  if (!view.daemon.running) return STATUS_NOT_RUNNING;
  return view.instancesDown.length > 0 ? 1 : 0;
}

async function clusterStatusCommand(g: GlobalOptions, format: Format): Promise<number> {
  const { agentConfigFor, withClusterSession } = await import('../context.js');
  const config = agentConfigFor(g);
  const [{ readClusterStatus }, { renderClusterStatus }] = await Promise.all([
    import('../../cluster/status.js'),
    import('../render/cluster-status-view.js'),
  ]);
  return withClusterSession(config, g.config, async (session) => {
    const status = await readClusterStatus(session, config.schedule.waitConcurrency);
    print(format === 'json' ? renderJson(status) : renderClusterStatus(status));
    const partial = reportUnread('status --cluster', status.unread, `${status.instances.length} instances (the unread marked)`);
    return status.ok && partial === 0 ? 0 : 1;
  });
}

async function gatherStatus(config: AgentConfig) {
  const [{ daemonLockHolder }, { readStatus }, { readPause }, { statusView }, { latestLocalStates, describeLocalState }] =
    await Promise.all([
      import('../../state/daemon-lock-holder.js'),
      import('../../state/daemon-status.js'),
      import('../../state/pause.js'),
      import('../render/status-view.js'),
      import('../../recovery/local-state.js'),
    ]);
  const { stateDir } = config.agent;
  const { held: alive, holder } = await daemonLockHolder(config.agent.hostLock);
  let snapshot: DaemonStatus | undefined;
  let snapshotError: string | undefined;
  try {
    snapshot = readStatus(stateDir);
  } catch (err) {
    snapshotError = `cannot read the daemon's status file: ${errorMessage(err)}`;
  }
  let pause: PauseState | undefined;
  let pauseError: string | undefined;
  try {
    pause = readPause(stateDir);
  } catch (err) {
    pauseError = errorMessage(err);
  }
  const now = new Date();
  const restores = latestLocalStates(stateDir).map((r) => describeLocalState(r, now));
  return statusView({ now, stateDir, daemon: { pid: holder?.pid, alive }, snapshot, snapshotError, pause, pauseError, restores });
}
