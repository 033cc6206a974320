// `spiderbackup list` (any spider node): the history of global backups, one state each.
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import type { ListResult } from '../../cluster/history.js';
import type { Repository } from '../../repo/repository.js';
import { reportUnread } from '../partial.js';
import { print, renderJson, renderTable } from '../render/table.js';
import { configOption, formatOption, type Format, type GlobalOptions, type Register } from '../options.js';

export const LIST_DEFAULT_LIMIT = 20;

function parseLimit(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 10_000) throw new InvalidArgumentError('must be a number from 1 to 10000');
  return n;
}

export const register: Register = (program, setExit) => {
  program
    .command('list')
    .description(
      'On any spider node: the history of global backups, newest first, with a state each (running, complete, failed, cancelled).',
    )
    .addOption(configOption())
    .addOption(formatOption())
    .addOption(new Option('--limit <n>', 'at most this many backups').argParser(parseLimit).default(LIST_DEFAULT_LIMIT))
    .option('--latest-complete', 'print only the id of the newest complete backup (exit 1 if there is none)', false)
    .addHelpText(
      'after',
      '\nStates: running (a task is not final), complete (every task success), failed (any other end, a task expired after 12 h ' +
        'included), cancelled (spiderbackup cancel), unknown (a replica could not be read).',
    )
    .action(async (opts: { format: Format; limit: number; latestComplete: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const config = (await import('../context.js')).agentConfigFor(g);
      setExit(opts.latestComplete ? await latestCommand(config, g.config) : await listCommand(config, { files: g.config, ...opts }));
    });
};

async function listCommand(config: AgentConfig, opts: { files?: string[]; format: Format; limit: number }): Promise<number> {
  const [{ listBackups }, { listJson, listTableRows }, { withClusterSession, runOnPrimary }] = await Promise.all([
    import('../../cluster/history.js'),
    import('../render/history-view.js'),
    import('../context.js'),
  ]);
  const repo = await (await import('../../repo/agent-repository.js')).configuredRepository(config, opts.files);
  return withClusterSession(
    config,
    opts.files,
    async (session) => {
      const res = await listBackups(config, session, { limit: opts.limit });
      if (repo) await addRepositoryBytes(repo, res);
      if (opts.format === 'json') print(renderJson(listJson(res.backups)));
      else {
        const { head, rows } = listTableRows(res.backups);
        print(renderTable(head, rows));
        print(`${rows.length} backups`);
      }
      return reportUnread('list', res.errors, `${res.backups.length} backups`);
    },
    runOnPrimary('list'),
  );
}

/** Each backup's bytes from its manifests in the repository; one that cannot be read is named among the errors. */
async function addRepositoryBytes(repo: Repository, res: ListResult): Promise<void> {
  const { repoBackups } = await import('../../restore/repo-files.js');
  try {
    const held = new Map((await repoBackups(repo)).map((b) => [b.backupId, b]));
    for (const b of res.backups) {
      const r = held.get(b.backupId);
      b.bytes = (r?.instances ?? []).reduce((n, i) => n + (i.manifest?.files ?? []).reduce((m, f) => m + f.bytes, 0), 0);
    }
  } catch (err) {
    const { errorMessage } = await import('../../errors.js');
    res.errors.push(`repository ${repo.where}: ${errorMessage(err)}`);
  }
}

async function latestCommand(config: AgentConfig, files: string[] | undefined): Promise<number> {
  const [{ latestComplete }, { withClusterSession }] = await Promise.all([import('../../cluster/history.js'), import('../context.js')]);
  // For scripts (`id=$(spiderbackup list --latest-complete)`): not the primary is a failure, on stderr.
  const notPrimary = (err: Error) => {
    process.stderr.write(`spiderbackup: ${err.message}\n`);
    return 1;
  };
  return withClusterSession(
    config,
    files,
    async (session) => {
      const res = await latestComplete(config, session);
      // A replica that cannot be read may hide a newer complete backup: no id then.
      if (res.errors.length > 0) return reportUnread('list', res.errors, 'no backup id');
      if (!res.backup) {
        process.stderr.write('spiderbackup: no complete backup\n');
        return 1;
      }
      print(res.backup.backupId);
      return 0;
    },
    notPrimary,
  );
}
