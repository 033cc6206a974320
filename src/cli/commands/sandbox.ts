// `spiderbackup sandbox up | run | down`: a throw-away TenDB-like cluster on loopback from the
// installed MariaDB packages, with one agent daemon per simulated host (src/sandbox/).
import { existsSync, mkdtempSync, readdirSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseDuration } from '../../config/duration.js';
import { formatDuration } from '../../format.js';
import type { Register } from '../options.js';

interface SandboxOptions {
  dir: string;
  ports?: string;
  tick: string;
  keep?: boolean;
}

/** Exit code after Ctrl-C, as a shell reports a SIGINT. */
const INTERRUPTED = 130;

export const register: Register = (program, setExit) => {
  const sandbox = program
    .command('sandbox')
    .description(
      'A throw-away TenDB-like cluster on loopback (spider node, tdbctl stand-in, 2 shards with a replica each) with one agent per host.',
    )
    .addHelpText(
      'after',
      '\nNeeds mariadbd, mariadb-install-db and mariadb-dump (MariaDB 10.11 with Spider). `npm run demo` runs `sandbox run`.',
    );
  const common = (c: Command, dir: Option = new Option('--dir <dir>', DIR_HELP).default(defaultDir())) =>
    c
      .addOption(dir)
      .addOption(new Option('--ports <min-max>', 'port range for its servers (default: $SPIDERBACKUP_TEST_PORTS or 20000-26899)'))
      .addOption(new Option('--tick <duration>', "the agents' tick and the --wait interval").default('500ms').argParser(parseTick));

  common(sandbox.command('up').description('Start a sandbox and leave it running (stop it with `sandbox down`).')).action(
    async (opts: SandboxOptions) => {
      const { sandboxUp } = await import('../../sandbox/control.js');
      const t0 = Date.now();
      const state = await sandboxUp({ dir: opts.dir, ...portsOf(opts), tick: opts.tick, onStep: (s) => process.stdout.write(`  ${s}\n`) });
      process.stdout.write(`sandbox up in ${formatDuration(Date.now() - t0)}: ${state.base}\n`);
      for (const i of state.instances) process.stdout.write(`  ${i.role.padEnd(6)} ${i.name.padEnd(8)} ${i.host}:${i.port}\n`);
      process.stdout.write(
        `spider node's agent config: ${state.spiderAgentConfig}\nstop it: spiderbackup sandbox down --dir ${state.base}\n`,
      );
      setExit(0);
    },
  );

  // The demo's own dir by default: a `sandbox up` in the default dir is never touched by it.
  common(
    sandbox
      .command('run')
      .description('The demo: up, a global backup with schedule --wait through the agents, the results, and down (unless --keep).'),
    new Option('--dir <dir>', `${DIR_HELP} (default: a new private directory ${join(tmpdir(), 'spiderbackup-demo-XXXXXX')})`),
  )
    .option('--keep', 'leave the sandbox running at the end, for exploring', false)
    .action(async (opts: Partial<SandboxOptions>) => {
      const [{ runDemo }, { sandboxDown }] = await Promise.all([import('../../sandbox/demo.js'), import('../../sandbox/control.js')]);
      opts.dir ??= mkdtempSync(join(tmpdir(), 'spiderbackup-demo-'));
      const dir = resolve(opts.dir);
      // A dir that was in use before this run is someone else's sandbox (up refuses it): never stopped from here.
      const ours = !existsSync(dir) || readdirSync(dir).length === 0;
      const down = async () => {
        if (!ours) return { found: false, killed: 0 };
        // Failed before the keeper recorded anything: only the (empty) dir made for it is left.
        if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
        return sandboxDown(dir);
      };
      const abort = new AbortController();
      let stopping: Promise<void> | undefined;
      const interrupt = (sig: NodeJS.Signals) => {
        stopping ??= (async () => {
          abort.abort();
          process.stdout.write(`\n${sig}: stopping everything the demo started …\n`);
          const r = await down();
          process.stdout.write(
            `stopped${r.killed ? ` (${r.killed} processes had to be killed)` : ''}; ${ours ? `${dir} removed` : `${dir} left alone`}\n`,
          );
          process.exit(INTERRUPTED);
        })();
      };
      process.on('SIGINT', interrupt);
      process.on('SIGTERM', interrupt);
      try {
        setExit(
          await runDemo({
            dir,
            ...(opts.ports === undefined ? {} : { ports: opts.ports }),
            keep: opts.keep === true,
            tick: opts.tick as string,
            signal: abort.signal,
            out: (t) => process.stdout.write(`${t}\n`),
          }),
        );
      } catch (err) {
        if (stopping) return stopping;
        // Whatever failed, leave nothing running (unless asked to keep it).
        if (!opts.keep) await down().catch(() => {});
        throw err;
      }
    });

  common(
    sandbox.command('down').description('Stop the sandbox in --dir (only what it recorded and what runs from its dir) and remove the dir.'),
  ).action(async (opts: SandboxOptions) => {
    const { sandboxDown } = await import('../../sandbox/control.js');
    portsOf(opts);
    const r = await sandboxDown(opts.dir);
    process.stdout.write(r.found ? `sandbox in ${opts.dir} stopped and removed\n` : `no sandbox in ${opts.dir}\n`);
    setExit(0);
  });
};

/** As [agent] tick_interval takes it (100ms to 24h), checked here so that no daemon starts with a bad one. */
function parseTick(value: string): string {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 100 || ms > 24 * 3_600_000)
    throw new InvalidArgumentError('must be a duration from 100ms to 24h, e.g. 500ms or 2s');
  return value;
}

function portsOf(opts: SandboxOptions): { ports?: string } {
  opts.dir = resolve(opts.dir); // every path the sandbox records and matches processes by is absolute
  return opts.ports === undefined ? {} : { ports: opts.ports };
}

const DIR_HELP = 'base directory of the sandbox (everything it starts lives there)';

/** Beside the other temp files. */
function defaultDir(): string {
  return `${process.env.TMPDIR || '/tmp'}/spiderbackup-sandbox`;
}
