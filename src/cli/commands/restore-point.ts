// `spiderbackup restore-point <name>` (spider master): a consistent cluster-wide restore point;
// `--list` shows the recorded ones.
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { AgentConfig } from '../../config/agent.js';
import { formatDuration } from '../../format.js';
import type { Logger } from '../../log.js';
import { validateBackupId } from '../../task/backup-id.js';
import { print, renderJson, renderTable } from '../render/table.js';
import { configOption, formatOption, parseForDuration, type Format, type GlobalOptions, type Register } from '../options.js';

interface Opts {
  list: boolean;
  format: Format;
  acquireTimeout: number;
  holdTimeout: number;
  attempts: number;
}

export const register: Register = (program, setExit) => {
  program
    .command('restore-point')
    .argument('[name]', 'name of the point (1-40 of letters, digits, - _ .)')
    .description(
      "On the primary spider node: block commits on every Spider node for a moment, record every shard master's binlog GTID position " +
        'as a consistent restore point; --list shows the recorded points (on any spider node).',
    )
    .addOption(configOption())
    .option('--list', 'list the recorded restore points, newest first', false)
    .addOption(formatOption())
    .addOption(
      new Option('--acquire-timeout <duration>', 'give up the block on every node when one cannot get it within this')
        .default(2000, '2s')
        .argParser(parseForDuration),
    )
    .addOption(
      new Option('--hold-timeout <duration>', 'longest wait for the shard positions while commits are blocked')
        .default(5000, '5s')
        .argParser(parseForDuration),
    )
    .addOption(new Option('--attempts <n>', 'attempts (with backoff) before giving up').default(5).argParser(parseAttempts))
    .addHelpText(
      'after',
      '\nSpider nodes with Wrapper SPIDER are blocked (SPIDER_SLAVE nodes take no writes). A point is never taken partially: any ' +
        'node or shard that fails releases every node; the command then retries.',
    )
    .action(async (name: string | undefined, opts: Opts, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { config, log } = await (await import('../context.js')).commandContext(g);
      try {
        setExit(await restorePointCommand(config, log.logger, name, g.config, opts));
      } finally {
        log.flush();
      }
    });
};

function parseAttempts(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 100) throw new InvalidArgumentError('must be a number from 1 to 100');
  return n;
}

async function restorePointCommand(config: AgentConfig, logger: Logger, name: string | undefined, files: string[] | undefined, opts: Opts) {
  const [{ listRestorePoints, takeRestorePoint }, { pointJson }, { UsageError }, { withClusterSession, runOnPrimary }] = await Promise.all([
    import('../../cluster/restore-point.js'),
    import('../../cluster/restore-point-model.js'),
    import('../../errors.js'),
    import('../context.js'),
  ]);
  if (opts.list) {
    if (name !== undefined) throw new UsageError('restore-point: give either a name or --list, not both');
    return withClusterSession(config, files, async (session) => {
      const points = await listRestorePoints(session, config.schedule.waitConcurrency);
      if (opts.format === 'json') print(renderJson(points.map(pointJson)));
      else
        print(
          renderTable(
            ['Name', 'TakenAt', 'PauseMs', 'SpiderNodes', 'Positions'],
            points.map((p) => [
              p.name +
                (p.status === 'opted-out' ? ' (opted out: no point)' : '') +
                (p.complete ? '' : ' (incomplete)') +
                (p.internalXa ? '' : ' (no internal XA)'),
              p.takenAt,
              p.pauseMs,
              p.spiderNodes,
              p.shards.map((s) => `${s.serverName} ${s.gtid}`).join(', '),
            ]),
          ),
        );
      return 0;
    });
  }
  if (name === undefined) throw new UsageError('restore-point: give the point a name (or --list)');
  validateBackupId(name, 'restore point name');
  return withClusterSession(
    config,
    files,
    async (session) => {
      const res = await takeRestorePoint({ config, logger }, session, {
        name,
        acquireTimeoutMs: opts.acquireTimeout,
        holdTimeoutMs: opts.holdTimeout,
        attempts: opts.attempts,
      });
      for (const w of res.warnings) process.stderr.write(`spiderbackup: warning: ${w}\n`);
      const p = res.point;
      if (opts.format === 'json') print(renderJson(pointJson(p)));
      else {
        print(
          `restore point ${p.name} taken at ${p.takenAt}: commits paused ${formatDuration(p.pauseMs)} on ${p.spiderNodes} Spider node(s) ` +
            `(acquire ${formatDuration(p.acquireMs)}, hold ${formatDuration(p.holdMs)}; attempt ${res.attempts})`,
        );
        print(
          renderTable(
            ['ServerName', 'Host', 'Port', 'Gtid'],
            p.shards.map((s) => [s.serverName, s.host, s.port, s.gtid]),
          ),
        );
        if (res.stored !== undefined) print(`written to the repository: ${res.stored}`);
      }
      return 0;
    },
    // Taking a point blocks and records through the primary: elsewhere it fails, naming the primary.
    runOnPrimary('restore-point'),
  );
}
