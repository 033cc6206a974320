// `spiderbackup status`: what this host's agent sees (from its state files; no database).
import type { Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import { errorMessage } from '../../errors.js';
import { formatBytes, formatDuration } from '../../format.js';
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
    // Only with a repository: the open restores and their tasks' states (issue 20), nothing read otherwise.
    const restores = config.repository ? await openRestoresOf(config, g.config) : undefined;
    if (format === 'json') print(renderJson(restores ? { ...status, restores } : status));
    else {
      print(renderClusterStatus(status));
      if (restores) print(renderRestores(restores));
    }
    const partial = reportUnread('status --cluster', status.unread, `${status.instances.length} instances (the unread marked)`);
    return status.ok && partial === 0 ? 0 : 1;
  });
}

type OpenRestores = Awaited<ReturnType<(typeof import('../../recovery/open-restores.js'))['readOpenRestores']>>;

/** The open restores, or one line saying why they cannot be read (never fails the status). */
async function openRestoresOf(config: AgentConfig, files: string[] | undefined): Promise<OpenRestores | { error: string }> {
  try {
    const repo = await (await import('../../repo/agent-repository.js')).configuredRepository(config, files);
    if (!repo) return [];
    return await (await import('../../recovery/open-restores.js')).readOpenRestores(repo);
  } catch (err) {
    return { error: errorMessage(err) };
  }
}

function renderRestores(r: OpenRestores | { error: string }): string {
  if (!Array.isArray(r)) return `\nRestores: cannot be read from the repository: ${r.error}`;
  if (r.length === 0) return '\nRestores: none running';
  const lines = ['', 'Restores:'];
  for (const x of r) {
    lines.push(`  ${x.restoreId}: backup ${x.backupId ?? '?'} to point ${x.point ?? '?'}, started ${x.createdAt ?? '?'}`);
    for (const t of x.tasks)
      lines.push(
        `    ${t.target}: ${t.phase} ${formatBytes(t.bytes)} ${formatDuration(t.phaseMs)}${t.attempt > 1 ? ` (attempt ${t.attempt})` : ''}${t.error ? `: ${t.error}` : ''}`,
      );
    for (const p of x.problems) lines.push(`    cannot read: ${p}`);
  }
  return lines.join('\n');
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
