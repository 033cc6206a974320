// `spiderbackup verify <backup-id>` (primary spider node): one verdict line per instance, exit 1
// naming what is wrong. `--restore-test` also restores one shard here and compares checksums.
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import type { RestorePoint } from '../../core/restore-point-model.js';
import { print } from '../output.js';
import { configOption, type GlobalOptions, type Register } from '../options.js';

export const register: Register = (program, setExit) => {
  program
    .command('verify')
    .description(
      'On the primary spider node: checks a backup made by a built-in runner (task statuses, manifests, files where reachable); exit 1 naming what is wrong.',
    )
    .argument('<backup-id>', 'the backup id to verify')
    .addOption(configOption())
    .option(
      '--restore-test',
      'also restore one shard master (its files must be on this host) into a throw-away instance and compare CHECKSUM TABLE',
    )
    .addOption(
      new Option('--shard <n>', 'with --restore-test: the shard to restore (default: the first whose files are here)').argParser(
        parseShard,
      ),
    )
    .action(async (backupId: string, opts: { restoreTest?: boolean; shard?: number }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const config = (await import('../context.js')).agentConfigFor(g);
      setExit(await verifyCommand(config, backupId, { files: g.config, restoreTest: opts.restoreTest === true, shard: opts.shard }));
    });
};

function parseShard(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a shard number');
  return Number(value);
}

async function verifyCommand(
  config: AgentConfig,
  backupId: string,
  opts: { files?: string[]; restoreTest: boolean; shard?: number },
): Promise<number> {
  const { verifyBackup, restoreTest, labelOf } = await import('../../core/verify.js');
  const res = await verifyBackup(config, { files: opts.files, backupId });
  if (res.kind === 'not-primary') {
    process.stderr.write(`spiderbackup: verify: ${res.spider} is not the primary spider node (tdbctl get primary); run it there\n`);
    return 1;
  }
  if (res.kind === 'none') {
    process.stderr.write(`spiderbackup: verify: no task with backup id ${res.backupId}\n`);
    return 1;
  }
  const width = Math.max(...res.instances.map((i) => labelOf(i.task).length));
  for (const i of res.instances) {
    const label = labelOf(i.task).padEnd(width);
    if (i.ok) print(`ok    ${label}  ${i.published?.tool ?? ''}, ${i.published?.bytes ?? 0} bytes; ${i.notes.join('; ')}`);
    else print(`FAIL  ${label}  ${i.problems.join('; ')}`);
  }
  for (const e of res.errors) process.stderr.write(`spiderbackup: verify: ${e}\n`);
  const bad = res.instances.filter((i) => !i.ok);
  if (bad.length > 0) {
    print(`backup ${backupId}: ${bad.length} of ${res.instances.length} instances FAILED: ${bad.map((i) => labelOf(i.task)).join(', ')}`);
  } else {
    print(`backup ${backupId}: all ${res.instances.length} instances verified`);
  }
  print(restorePointLine(backupId, res.restorePoint, bad.length === 0 && res.instances.every((i) => i.task.status === 'success')));
  let failed = bad.length > 0 || res.errors.length > 0;
  if (opts.restoreTest) {
    const r = await restoreTest(res, opts.shard);
    if (r.differences.length === 0)
      print(`restore test ${labelOf(r.task)} (${r.tool}): ${r.tables} tables, CHECKSUM TABLE equal to the source`);
    else {
      failed = true;
      print(`restore test ${labelOf(r.task)} (${r.tool}) FAILED: ${r.differences.join('; ')}`);
    }
  }
  return failed ? 1 : 0;
}

/** Whether the backup can be rolled forward to one consistent instant (README: restore-point). */
function restorePointLine(backupId: string, p: RestorePoint | undefined, complete: boolean): string {
  if (p === undefined) {
    return complete
      ? `restore point ${backupId}: none: this complete backup has no restore point, so its shards cannot be rolled forward to one ` +
          `consistent instant (see the spider master agent's log for why it was not taken)`
      : `restore point ${backupId}: none (taken only once every task has succeeded)`;
  }
  if (p.status === 'opted-out') return `restore point ${backupId}: none, by choice (scheduled with --no-restore-point)`;
  if (!p.complete)
    return `restore point ${backupId}: INCOMPLETE, a shard master lost its row of the point (${p.shards.length} shards found)`;
  return (
    `restore point ${backupId}: taken at ${p.takenAt}, ${p.shards.length} shards, commits paused ${p.pauseMs} ms on ` +
    `${p.spiderNodes} Spider node(s)${p.internalXa ? '' : ' (spider_internal_xa OFF: weaker)'}`
  );
}
