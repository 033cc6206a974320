// `spiderbackup logs`: the agent log, filtered and pretty-printed (rotated files included).
import { Option, type Command } from 'commander';
import { errorMessage, OperationError, UsageError } from '../../errors.js';
import { LEVELS, ROTATED_FILES, type LogFilter } from '../log-filter.js';
import { parseCount, parsePort, type GlobalOptions, type Register } from '../options.js';

export const register: Register = (program, setExit) => {
  program
    .command('logs')
    .description('Show the agent log (the [log] file, --file FILE, or stdin with --file -), filtered and pretty-printed.')
    .addHelpText(
      'after',
      `\nWithout -f, the rotated files logrotate left next to the file are read first, oldest first: <file>.N or <file>.N.gz, N = 1 to ` +
        `${ROTATED_FILES}.`,
    )
    .option('-f, --follow', 'keep reading as lines are added, across log rotation', false)
    .option('--backup-id <id>', 'only lines of this backup id')
    .option('--port <port>', 'only lines of this instance port', parsePort)
    .addOption(new Option('--level <level>', 'lowest level shown').choices(Object.keys(LEVELS)))
    .option(
      '--file <file>',
      'read this file instead of [log] file; - reads stdin (e.g. journalctl -u spiderbackup -o cat | spiderbackup logs --file -)',
    )
    .option('-n, --lines <n>', 'only the last n matching lines of what is there already (default with -f: 10)', parseCount)
    .option('--json', 'print the matching JSON lines as they are', false)
    .action(async (opts: LogsOptions, cmd: Command) => {
      await logsCommand(opts, cmd.optsWithGlobals<GlobalOptions>());
      setExit(0);
    });
};

interface LogsOptions {
  follow: boolean;
  backupId?: string;
  port?: number;
  level?: string;
  file?: string;
  lines?: number;
  json: boolean;
}

/** The agent config is read only when no --file is given. */
async function logsCommand(opts: LogsOptions, g: GlobalOptions): Promise<void> {
  const filter: LogFilter = {
    ...(opts.backupId !== undefined ? { backupId: opts.backupId } : {}),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.level !== undefined ? { minLevel: LEVELS[opts.level] as number } : {}),
  };
  const [{ matches, parseLine }, { readLogFile, readLogStream }] = await Promise.all([
    import('../log-filter.js'),
    import('../log-source.js'),
  ]);
  const file = opts.file ?? (await import('../context.js')).agentConfigFor(g).log.file;
  // Standard input only when asked for (--file -): a command that quietly waits on a pipe or a
  // terminal nobody writes to looks hung.
  if (file === undefined) {
    throw new UsageError(
      'no [log] file is configured, so the daemon logs to journald: journalctl -u spiderbackup -o cat | spiderbackup logs --file - (or ' +
        'journalctl -f … for -f); or give the log file with --file FILE',
    );
  }
  const pretty = opts.json
    ? undefined
    : (await import('pino-pretty')).prettyFactory({
        colorize: (await import('../render/table.js')).useColor(process.stdout),
        translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
        ignore: 'hostname',
      });
  const show = (line: string) => {
    const p = parseLine(line);
    if (!matches(p, filter)) return;
    if (p.kind === 'text' || pretty === undefined) process.stdout.write(`${line}\n`);
    else process.stdout.write(pretty(p.record));
  };
  const keep = opts.lines ?? (opts.follow ? 10 : undefined);
  // Until the existing content is read, only the last `keep` matching lines are kept.
  let backlog: string[] | undefined = keep === undefined ? undefined : [];
  const onLine = (line: string) => {
    if (backlog === undefined) return show(line);
    if (!matches(parseLine(line), filter)) return;
    backlog.push(line);
    if (backlog.length > (keep as number)) backlog.shift();
  };
  const flushBacklog = () => {
    const lines = backlog ?? [];
    backlog = undefined;
    for (const l of lines) show(l);
  };
  if (file === '-') {
    await readLogStream(process.stdin, onLine);
    flushBacklog();
    return;
  }
  // Without -f, a backup's lines are all found after a rotation: its rotated files come first.
  // With -f, what is there already is the file's own end.
  const rotated = opts.follow ? 0 : ROTATED_FILES;
  const onSkipped = (name: string, err: unknown) =>
    process.stderr.write(`spiderbackup: warning: ${name}: ${errorMessage(err)} (not read, or not to its end)\n`);
  try {
    await readLogFile(file, onLine, { follow: opts.follow, onCaughtUp: flushBacklog, rotated, onSkipped });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new OperationError(`${file}: no such log file`);
    throw err;
  }
  flushBacklog();
}
