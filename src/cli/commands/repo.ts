// `spiderbackup repo get <backup-id> <host>_<port> [--out DIR | -]` (README "Repository"): one
// instance's backup files fetched by hand from the repository, decrypted, each checked against the
// sha256 of the stored bytes in its manifest while it streams.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import { formatBytes } from '../../format.js';
import { validateBackupId } from '../../task/backup-id.js';
import { print } from '../render/table.js';
import { configOption, type GlobalOptions, type Register } from '../options.js';

function parseInstance(value: string): { host: string; port: number; name: string } {
  const m = /^([A-Za-z0-9.:-][A-Za-z0-9._:-]*)_(\d{1,5})$/.exec(value);
  if (!m) throw new InvalidArgumentError('must be <host>_<port>, as in the repository (e.g. 10.0.0.1_20000)');
  return { host: m[1] as string, port: Number(m[2]), name: value };
}

export const register: Register = (program, setExit) => {
  const repo = program.command('repo').description('The [repository] by hand.');
  repo
    .command('get')
    .description(
      "Downloads (and decrypts) one instance's backup files from the repository into DIR (default ./<host>_<port>/), or its " +
        'one data file to stdout with -; every byte is checked against its manifest.',
    )
    .argument('<backup-id>', 'the backup id')
    .argument('<instance>', '<host>_<port>, as named in the repository', parseInstance)
    .argument('[stdout]', '- : the data stream to stdout (only when the instance has one data file)')
    .option('--out <dir>', 'the directory to write the files into (created; must not hold them already)')
    .addOption(configOption())
    .action(
      async (backupId: string, inst: ReturnType<typeof parseInstance>, dash: string | undefined, opts: { out?: string }, cmd: Command) => {
        const g = cmd.optsWithGlobals<GlobalOptions>();
        const { UsageError } = await import('../../errors.js');
        validateBackupId(backupId, 'backup id');
        if (dash !== undefined && dash !== '-')
          throw new UsageError(`repo get: unexpected argument ${JSON.stringify(dash)} (only - for stdout)`);
        if (dash === '-' && opts.out !== undefined) throw new UsageError('repo get: --out or -, not both');
        const config = (await import('../context.js')).agentConfigFor(g);
        setExit(
          await getCommand(config, backupId, inst, {
            files: g.config,
            out: dash === '-' ? '-' : (opts.out ?? join(process.cwd(), inst.name)),
          }),
        );
      },
    );
};

async function getCommand(
  config: AgentConfig,
  backupId: string,
  inst: { host: string; port: number; name: string },
  opts: { files?: string[] | undefined; out: string },
): Promise<number> {
  const [{ UsageError, OperationError }, { configuredRepository }, { withLock }, files] = await Promise.all([
    import('../../errors.js'),
    import('../../repo/agent-repository.js'),
    import('../../repo/lock.js'),
    import('../../restore/repo-files.js'),
  ]);
  const repo = await configuredRepository(config, opts.files);
  if (!repo) throw new UsageError('repo get: no [repository] in the agent config');
  return withLock(repo, 'restore', async () => {
    const found = await files.readRepoManifest(repo, backupId, inst.host, inst.port);
    if (!found) throw new OperationError(`repo get: ${repo.where}: no complete backup ${backupId} of ${inst.name} (no manifest.json)`);
    const m = found.manifest;
    if (opts.out === '-') {
      await files.streamObject(repo, backupId, inst.host, inst.port, m, process.stdout);
      return 0;
    }
    const dir = resolve(opts.out);
    for (const f of [...m.files.map((x) => x.name), 'manifest.json'])
      if (existsSync(join(dir, f))) throw new OperationError(`repo get: ${join(dir, f)} exists; not overwritten`);
    await files.fetchInstance(repo, backupId, inst.host, inst.port, m, dir);
    const { writeFileAtomic } = await import('../../fs.js');
    writeFileAtomic(join(dir, 'manifest.json'), found.text, { mode: 0o640, durable: false });
    for (const f of m.files) print(`${join(dir, f.name)}  (${formatBytes(f.bytes)} stored, sha256 checked)`);
    print(`${backupId} ${inst.name}: ${m.files.length} file(s) from ${repo.where} into ${dir} (${m.tool.name})`);
    return 0;
  });
}
