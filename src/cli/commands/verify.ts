// `spiderbackup verify <backup-id>` (any spider node): one verdict line per instance, exit 1
// naming what is wrong; with a repository, also any hole in each shard's binlog archive after the
// backup. `--restore-test` also restores one shard here and compares checksums; with `--to-point`
// or `--to-time` every shard, rolled forward (the backup id then optional; from the repository
// alone when the cluster cannot be reached).
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import { validateBackupId } from '../../task/backup-id.js';
import type { RestorePoint } from '../../cluster/restore-point-model.js';
import { formatDuration } from '../../format.js';
import type { ClusterSession } from '../../cluster/session.js';
import type { Repository } from '../../repo/repository.js';
import { reportUnread } from '../partial.js';
import { print } from '../render/table.js';
import { configOption, type GlobalOptions, type Register } from '../options.js';

export const register: Register = (program, setExit) => {
  program
    .command('verify')
    .description(
      'On any spider node: checks a backup made by a built-in runner (task statuses, manifests, files where reachable); exit 1 naming what is wrong.',
    )
    .argument('[backup-id]', 'the backup id to verify (with --restore-test --to-point/--to-time: default the newest usable for the point)')
    .addOption(configOption())
    .option(
      '--restore-test',
      'also restore one shard master (its files must be on this host, or in the [repository]) into a throw-away instance and compare CHECKSUM TABLE ' +
        '(with --to-point: every shard, rolled forward to the point)',
    )
    .addOption(
      new Option('--shard <n>', 'with --restore-test: the shard to restore (default: the first whose files are here)').argParser(
        parseShard,
      ),
    )
    .option(
      '--to-point <name>',
      "with --restore-test: restore every shard here and roll each forward with its master's binlogs to the restore point (see restore-plan)",
    )
    .addOption(
      new Option(
        '--to-time <time>',
        'with --restore-test: as --to-point, to the newest restore point at or before this time (the clock restore-point --list shows)',
      ).conflicts('toPoint'),
    )
    .option(
      '--check-sql <query>',
      'with --to-point or --to-time: run on every restored shard; the first value of each is printed and summed',
    )
    .addOption(new Option('--expect <n>', 'with --check-sql: exit 1 unless the sum equals n').argParser(parseNumber))
    .option(
      '--checksums',
      "with --to-point or --to-time: print CHECKSUM TABLE of every user table of each restored shard (to compare with a restored cluster's)",
    )
    .action(async (backupId: string | undefined, opts: VerifyOpts, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { UsageError } = await import('../../errors.js');
      const flag = opts.toPoint !== undefined ? '--to-point' : opts.toTime !== undefined ? '--to-time' : undefined;
      if (flag !== undefined && opts.restoreTest !== true) throw new UsageError(`verify: ${flag} needs --restore-test`);
      if (flag !== undefined && opts.shard !== undefined) throw new UsageError(`verify: ${flag} restores every shard: no --shard`);
      if (opts.checkSql !== undefined && flag === undefined) throw new UsageError('verify: --check-sql needs --to-point or --to-time');
      if (backupId === undefined && flag === undefined)
        throw new UsageError('verify: give the backup id (it may be left out only with --restore-test --to-point or --to-time)');
      if (opts.expect !== undefined && opts.checkSql === undefined) throw new UsageError('verify: --expect needs --check-sql');
      if (opts.checksums === true && flag === undefined) throw new UsageError('verify: --checksums needs --to-point or --to-time');
      const config = (await import('../context.js')).agentConfigFor(g);
      setExit(await verifyCommand(config, backupId, { files: g.config, restoreTest: opts.restoreTest === true, ...opts }));
    });
};

interface VerifyOpts {
  restoreTest?: boolean;
  shard?: number;
  toPoint?: string;
  toTime?: string;
  checkSql?: string;
  expect?: number;
  checksums?: boolean;
}

function parseNumber(value: string): number {
  if (!/^-?\d+(\.\d+)?$/.test(value)) throw new InvalidArgumentError('must be a number');
  return Number(value);
}

function parseShard(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a shard number');
  return Number(value);
}

async function verifyCommand(
  config: AgentConfig,
  backupId: string | undefined,
  opts: { files?: string[] | undefined; restoreTest: boolean } & VerifyOpts,
): Promise<number> {
  if (backupId !== undefined) validateBackupId(backupId, 'backup id');
  if (opts.toPoint !== undefined) validateBackupId(opts.toPoint, '--to-point');
  if (opts.toTime !== undefined) (await import('../../restore/point-choice.js')).clockMicros(opts.toTime);
  const [{ withClusterSession, runOnPrimary }, { configuredRepository }, { withLock }, { orFromRepository }] = await Promise.all([
    import('../context.js'),
    import('../../repo/agent-repository.js'),
    import('../../repo/lock.js'),
    import('../repository-fallback.js'),
  ]);
  const repo = await configuredRepository(config, opts.files);
  const viaCluster = () =>
    withClusterSession(config, opts.files, (session) => verifyIn(config, session, backupId, { ...opts, repo }), runOnPrimary('verify'));
  // A restore to a point needs no cluster: without one, the repository has what it reads.
  const toPoint = opts.restoreTest && (opts.toPoint !== undefined || opts.toTime !== undefined);
  const run = toPoint
    ? () =>
        orFromRepository(repo, viaCluster, async (r, why) => {
          print('verify: the task statuses and published manifests are not checked (the cluster cannot be reached)');
          return (await pointTest(config, undefined, backupId, { ...opts, repo: r, unreachable: why })) ? 0 : 1;
        })
    : viaCluster;
  // In the repository, `expire` never deletes what is being verified or restored (and waits for nothing: it refuses).
  return repo ? withLock(repo, opts.restoreTest ? 'restore' : 'verify', run) : run();
}

async function verifyIn(
  config: AgentConfig,
  session: ClusterSession,
  backupId: string | undefined,
  opts: { restoreTest: boolean; repo: Repository | undefined } & VerifyOpts,
): Promise<number> {
  if (backupId === undefined) return (await pointTest(config, session, undefined, opts)) ? 0 : 1;
  const { verifyBackup, restoreTest, labelOf, archiveReports, archiveLines } = await import('../../restore/verify.js');
  const res = await verifyBackup(config, session, { backupId, repo: opts.repo });
  if (res.kind === 'none') {
    process.stderr.write(`spiderbackup: verify: no task with backup id ${res.backupId}\n`);
    return 1;
  }
  const width = Math.max(...res.instances.map((i) => labelOf(i.task).length));
  for (const i of res.instances) {
    const label = labelOf(i.task).padEnd(width);
    if (i.ok) print(`ok    ${label}  ${i.published?.tool ?? ''}, ${i.published?.bytes ?? 0} bytes; ${i.notes.join('; ')}`);
    else print(`FAIL  ${label}  ${i.problems.join('; ')}`);
    for (const w of i.warnings) print(`      ${' '.repeat(width)}  warning: ${w}`);
  }
  const bad = res.instances.filter((i) => !i.ok);
  // Never "all verified" while an instance's tasks could not be read: it is named as not verified.
  const notRead = res.unread.length > 0 ? `; not verified: ${res.unread.join(', ')} (cannot be read)` : '';
  if (bad.length > 0) {
    print(
      `backup ${backupId}: ${bad.length} of ${res.instances.length} instances FAILED: ${bad.map((i) => labelOf(i.task)).join(', ')}${notRead}`,
    );
  } else if (notRead !== '') {
    print(`backup ${backupId}: ${res.instances.length} instances verified${notRead}`);
  } else {
    print(`backup ${backupId}: all ${res.instances.length} instances verified`);
  }
  print(restorePointLine(backupId, res.restorePoint, bad.length === 0 && res.instances.every((i) => i.task.status === 'success')));
  if (opts.repo) for (const l of archiveLines(await archiveReports(opts.repo, res.instances))) print(l);
  let failed = reportUnread('verify', res.errors, `${res.instances.length} instances`) !== 0 || bad.length > 0;
  if (opts.restoreTest && (opts.toPoint !== undefined || opts.toTime !== undefined)) {
    if (!(await pointTest(config, session, backupId, opts))) failed = true;
  } else if (opts.restoreTest) {
    const r = await restoreTest(res, opts.shard, opts.repo);
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
    `restore point ${backupId}: taken at ${p.takenAt}, ${p.shards.length} shards, commits paused ${formatDuration(p.pauseMs)} on ` +
    `${p.spiderNodes} Spider node(s)${p.internalXa ? '' : ' (spider_internal_xa OFF: weaker)'}`
  );
}

/** `--restore-test --to-point/--to-time`: every shard restored and rolled forward here; false when it failed. */
async function pointTest(
  config: AgentConfig,
  session: ClusterSession | undefined,
  backupId: string | undefined,
  opts: VerifyOpts & { repo: Repository | undefined; unreachable?: string },
): Promise<boolean> {
  const [{ restoreToPoint }, { errorMessage, UsageError }, { choiceLines }, { unreachableOf }] = await Promise.all([
    import('../../restore/to-point.js'),
    import('../../errors.js'),
    import('./restore-plan.js'),
    import('../../db/reachability.js'),
  ]);
  const asked = opts.toPoint ?? `at ${opts.toTime ?? '?'}`;
  let r: Awaited<ReturnType<typeof restoreToPoint>>;
  try {
    r = await restoreToPoint(config, session, {
      backupId,
      pointName: opts.toPoint,
      toTime: opts.toTime,
      checkSql: opts.checkSql,
      checksums: opts.checksums === true,
      repo: opts.repo,
      unreachable: opts.unreachable,
    });
  } catch (err) {
    // The cluster gone: the caller reads the repository instead (repository-fallback.ts).
    if (err instanceof UsageError || (session && opts.repo && unreachableOf(err)?.kind === 'unreachable')) throw err;
    print(`restore test to point ${asked} FAILED: ${errorMessage(err)}`);
    return false;
  }
  for (const l of choiceLines(r.plan)) print(l);
  const pointName = r.plan.point?.name ?? asked;
  if (r.kind === 'refused') {
    print(`restore test to point ${pointName} REFUSED, nothing restored:`);
    for (const p of r.problems) print(`  ${p}`);
    return false;
  }
  let ok = true;
  for (const s of r.shards) {
    const carried =
      (s.carriedXa > 0 ? `; ${s.carriedXa} XA transaction(s) prepared at the dump's position prepared again first` : '') +
      (s.skippedXa > 0 ? `; ${s.skippedXa} XA transaction(s) already prepared in the copy not prepared again` : '');
    const archived = s.fromArchive > 0 ? `; ${s.fromArchive} from the binlog archive` : '';
    const replay =
      s.files.length > 0 ? `${s.files.length} binlog file(s) from ${s.from}${archived}${carried}` : `nothing to replay after ${s.from}`;
    print(`restore test ${s.label}: ${s.backup} restored + replayed to ${s.to} (${replay})`);
    if (s.preparedXa > 0) {
      ok = false;
      print(`  FAIL: ${s.preparedXa} XA transaction(s) left prepared at the point (XA RECOVER)`);
    }
    for (const c of s.checksums ?? []) print(`  checksum ${s.label.split(' ')[0]} ${c.table} ${c.checksum ?? 'NULL'}`);
  }
  if (opts.checkSql !== undefined) {
    const each = r.shards.map((s) => `${s.label.split(' ')[0]} ${s.check ?? 'NULL'}`).join(', ');
    if (r.checkSum === undefined) {
      print(`check: ${each}; not all numbers, no sum`);
      if (opts.expect !== undefined) ok = false;
    } else {
      const verdict = opts.expect === undefined ? '' : r.checkSum === opts.expect ? `, as expected` : `, EXPECTED ${opts.expect}`;
      print(`check: ${each}; sum ${r.checkSum}${verdict}`);
      if (opts.expect !== undefined && r.checkSum !== opts.expect) ok = false;
    }
  }
  print(`restore test to point ${r.point}: ${r.shards.length} shard(s) in ${formatDuration(r.ms)}${ok ? '' : ' FAILED'}`);
  return ok;
}
