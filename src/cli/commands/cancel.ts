// `spiderbackup cancel <backup-id> [--wait]` (any spider node): stop every unfinished task of a
// global backup, each on its own instance, and record the cancel.
import type { Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import type { TaskOutcome } from '../../cluster/cancel.js';
import type { ClusterSession } from '../../cluster/session.js';
import type { Round } from '../../cluster/wait.js';
import type { Logger } from '../../log.js';
import { validateBackupId } from '../../task/backup-id.js';
import { reportProblems } from '../partial.js';
import { print, renderTable } from '../render/table.js';
import { configOption, type GlobalOptions, type Register } from '../options.js';

export const register: Register = (program, setExit) => {
  program
    .command('cancel')
    .description("On any spider node: cancel a global backup: waiting tasks never start, running ones are killed by their host's agent.")
    .argument('<backup-id>', 'the backup id to cancel')
    .addOption(configOption())
    .option('--wait', 'wait until every task of the backup id is final, then print each outcome', false)
    .addHelpText(
      'after',
      '\nExit code: 0 when the cancel was recorded and applied everywhere (with --wait: when nothing of the backup runs any more);\n' +
        '1 when an instance could not be reached (run cancel again once it is: it only does what is left).',
    )
    .action(async (backupId: string, opts: { wait: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { config, log } = await (await import('../context.js')).commandContext(g);
      setExit(await cancelCommand(config, log.logger, { files: g.config, backupId, wait: opts.wait }));
      log.flush();
    });
};

const ACTION: Record<TaskOutcome['action'], string> = {
  stopped: 'not started; will never start',
  quit: 'quit: its agent kills the backup',
  final: 'had ended',
  'not-reached': 'NOT REACHED',
  unguarded: 'NOT GUARDED: may start when it arrives',
};

async function cancelCommand(
  config: AgentConfig,
  logger: Logger,
  opts: { files?: string[]; backupId: string; wait: boolean },
): Promise<number> {
  const backupId = validateBackupId(opts.backupId, 'backup id');
  const { withClusterSession, runOnPrimary } = await import('../context.js');
  // In an emergency a cancel that did nothing must not look done: it never exits 0 on a node it cannot act from.
  return withClusterSession(
    config,
    opts.files,
    (session) => cancelAndWait(config, logger, session, { backupId, wait: opts.wait }),
    runOnPrimary('cancel'),
  );
}

async function cancelAndWait(
  config: AgentConfig,
  logger: Logger,
  session: ClusterSession,
  opts: { backupId: string; wait: boolean },
): Promise<number> {
  const [{ runCancel }, { waitForBackup }] = await Promise.all([import('../../cluster/cancel.js'), import('../../cluster/wait.js')]);
  const res = await runCancel({ config, logger }, session, { backupId: opts.backupId });
  const table = (ts: TaskOutcome[]) =>
    renderTable(
      ['ServerName', 'Host', 'Port', 'ShardValue', 'BackupStatus', 'Cancel'],
      ts.map((o) => [o.task.serverName, o.task.host, o.task.port, o.task.shardValue, o.status ?? o.error ?? '', ACTION[o.action]]),
    );
  if (res.kind === 'ended') {
    print(`backup id ${res.backupId} has already ended; nothing to cancel (nothing recorded):`);
    print(table(res.tasks));
    return 0;
  }
  print(`backup id ${res.backupId} cancelled by ${res.by}:`);
  print(table(res.tasks));
  const done = res.tasks.filter((o) => o.action !== 'not-reached' && o.action !== 'unguarded').length;
  const partial = reportProblems('cancel', res.problems, `${done} of ${res.tasks.length} tasks handled as`);
  if (!opts.wait) return partial;
  const result = await waitForBackup(
    {
      config,
      logger,
      onRound: (r) => {
        print(`[${new Date().toISOString()}] ${res.backupId}: ${cancelProgress(r)}`);
        for (const e of r.errors) print(`  poll error: ${e}`);
      },
    },
    session,
    res.set,
    res.backupId,
  );
  print(`backup id ${res.backupId}: ${result.last.done ? 'nothing of it runs any more' : 'gave up waiting'}; outcome per task:`);
  print(
    renderTable(
      ['ServerName', 'Host', 'Port', 'ShardValue', 'BackupStatus'],
      result.last.views.map((v) => [
        v.task.serverName,
        v.task.host,
        v.task.port,
        v.task.shardValue,
        v.row?.status ?? 'unknown (not readable)',
      ]),
    ),
  );
  return result.last.done && res.problems.length === 0 ? 0 : 1;
}

/** "3/4 final (quit: success 2, quit: no process 1), 1 still stopping": a cancel's tasks end quit…, not failed. */
function cancelProgress(r: Round): string {
  const final = new Map<string, number>();
  let open = 0;
  for (const v of r.views) {
    const s = v.row?.status;
    if (s === undefined || ['init', 'replicated', 'running', 'quit'].includes(s)) open++;
    else final.set(s, (final.get(s) ?? 0) + 1);
  }
  const parts = [...final].map(([s, n]) => `${s} ${n}`).join(', ');
  return `${r.views.length - open}/${r.views.length} final${parts ? ` (${parts})` : ''}, ${open} still stopping`;
}
