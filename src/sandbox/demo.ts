// `sandbox run`, the demo: up, one global backup through the agents with `schedule --wait`, the
// task table while it runs and at the end, the backup in the sandbox's posix repository (its bytes,
// `verify` from it, a restore to its point), and down (unless --keep). Every
// spiderbackup step is the real CLI run as a child process, as an operator would type it.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { formatBytes, formatDuration } from '../format.js';
import { sandboxDown, sandboxUp } from './control.js';
import { ADMIN_PASSWORD, ADMIN_USER } from './cluster.js';
import type { SandboxState } from './layout.js';

const CLI = fileURLToPath(new URL('../bin/cli.js', import.meta.url));

/** What the demo shows while the backup runs: every agent and what it runs. */
const STATUS_WHILE_RUNNING: readonly string[] = ['status', '--cluster'];

/** How the demo judges the backup files. */
const VERIFY = (backupId: string): string[] => ['verify', backupId];

export interface DemoOptions {
  dir: string;
  ports?: string;
  keep: boolean;
  tick: string;
  /** Aborted on Ctrl-C: the CLI children are killed (the caller then runs `down`). */
  signal: AbortSignal;
  out: (text: string) => void;
}

const STEPS = 6;

/** Runs the demo; resolves with the exit code (0: every task succeeded). */
export async function runDemo(opts: DemoOptions): Promise<number> {
  const t0 = Date.now();
  // Seven wide, so that "[  2.5 s] " lines up with the indent of what is shown under it.
  const at = () => `[${formatDuration(Date.now() - t0).padStart(7)}]`;
  const say = (text: string) => opts.out(`${at()} ${text}`);
  const show = (text: string) => opts.out(indent(text));

  opts.out('spiderbackup demo: a small TenDB-like cluster on loopback, one agent daemon per host, one global backup.');
  opts.out(`Sandbox dir: ${opts.dir}${opts.keep ? ' (kept running: --keep)' : ' (removed at the end)'}`);
  opts.out('');
  say(`1/${STEPS} Starting the sandbox`);
  show('each role on its own loopback address, i.e. its own "host", with its own agent daemon');
  const state = await sandboxUp({
    dir: opts.dir,
    ...(opts.ports !== undefined ? { ports: opts.ports } : {}),
    tick: opts.tick,
    ...(opts.keep ? {} : { owner: process.pid }),
    onStep: (text) => say(`    ${text}`),
  });
  show(topology(state));

  const backupId = `demo-${new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)}`;
  const sb = (...args: string[]) => ['--agent-config', state.spiderAgentConfig, ...args];
  say(`2/${STEPS} Scheduling a global backup on the spider node and following it: schedule --wait --backup-id ${backupId}`);
  show(
    "schedule writes one task per instance through the spider node; each host's agent claims its own task on its next tick\n" +
      'and runs the backup under a supervisor; --wait follows the tasks until every one has ended.',
  );
  let shown: Promise<void> | undefined;
  const wait = await runCli(sb('schedule', '--wait', '--backup-id', backupId), opts.signal, (line) => {
    show(line);
    const running = /(\d+) running/.exec(line);
    if (!shown && running && Number(running[1]) > 0) {
      shown = (async () => {
        const asked = at(); // shown with the output, which comes later
        const s = await runCli(sb(...STATUS_WHILE_RUNNING), opts.signal);
        opts.out(`${asked}     while it runs: spiderbackup ${STATUS_WHILE_RUNNING.join(' ')}`);
        show(s.output.trimEnd());
      })();
    }
  });
  await shown;

  say(`3/${STEPS} The task table at the end: spiderbackup query --BackupId ${backupId}`);
  show((await runCli(sb('query', '--BackupId', backupId), opts.signal)).output.trimEnd());

  if (wait.code !== 0) show(failures(state));

  say(`4/${STEPS} The backup in the repository (mariadb-dump through zstd, streamed off each host, its manifest written last)`);
  show(
    "(a posix repository every host shares; the hosts' BackupDirs stay empty. The spider node's dump holds its schema and servers:\n" +
      "mariadb-dump reads no rows through Spider tables; the rows are the shards'. Beside the backup: its restore point and, once\n" +
      "their agents cut the first segments, the shard masters' binlog archive)",
  );
  show(backupFiles(join(opts.dir, 'repository')));
  show(`files left in the hosts' BackupDirs: ${countFiles(join(opts.dir, 'backups'))}`);
  const listed = await runCli(sb('list', '--limit', '1', '--format', 'json'), opts.signal);
  const bytes = listBytes(listed.output, backupId);
  show(`spiderbackup list: ${backupId} holds ${bytes === undefined ? '?' : formatBytes(bytes)} in the repository`);

  say(`5/${STEPS} Checking the backup in the repository: spiderbackup ${VERIFY(backupId).join(' ')}`);
  const verified = await runCli(sb(...VERIFY(backupId)), opts.signal);
  show(verified.output.trimEnd());
  const toPoint = ['verify', backupId, '--restore-test', '--to-point', backupId, '--check-sql', 'SELECT COUNT(*) FROM demo.orders'];
  say(`    Restoring every shard here, rolled forward to the backup's restore point: spiderbackup ${toPoint.join(' ')}`);
  const restored = await runCli(sb(...toPoint), opts.signal);
  show(
    restored.output
      .split('\n')
      .filter((l) => /^(restore test|check:| {2})/.test(l))
      .join('\n'),
  );

  if (opts.keep) {
    say(`6/${STEPS} Leaving the sandbox running (--keep)`);
    show(pokeHints(state));
  } else {
    say(`6/${STEPS} Stopping everything the demo started`);
    await sandboxDown(opts.dir);
  }
  const ok = wait.code === 0 && verified.code === 0 && restored.code === 0;
  const verdict = ok
    ? 'every task ended success, verify passed, and the shards restored here reached the restore point'
    : wait.code !== 0
      ? `schedule --wait exited ${wait.code}`
      : verified.code !== 0
        ? `verify exited ${verified.code}`
        : `verify --restore-test --to-point exited ${restored.code}`;
  opts.out('');
  opts.out(`${ok ? 'Done' : 'FAILED'} in ${formatDuration(Date.now() - t0)}: ${verdict}.`);
  return ok ? 0 : 1;
}

function topology(s: SandboxState): string {
  const rows = s.instances.map((i) => {
    const what =
      i.role === 'tdbctl'
        ? 'tdbctl stand-in (answers `tdbctl get primary`, serves mysql.servers)'
        : i.role === 'spider'
          ? 'spider node (SPIDER0), routes demo.orders and the task table'
          : i.role === 'master'
            ? `shard ${i.shardValue} master (SPT${i.shardValue})`
            : `replica of shard ${i.shardValue} (SPT_SLAVE${i.shardValue})`;
    const daemon = s.hosts.find((h) => h.address === i.host && i.role !== 'tdbctl');
    return `${`${i.host}:${i.port}`.padEnd(17)} ${what}${daemon ? `; agent pid ${daemon.daemonPid}` : ''}`;
  });
  return rows.join('\n');
}

/** What the supervisors logged about failed backups (their stderr's last lines), per host. */
function failures(s: SandboxState): string {
  const lines: string[] = [];
  for (const h of s.hosts) {
    let text = '';
    try {
      text = readFileSync(h.log, 'utf8');
    } catch {
      continue;
    }
    for (const l of text.split('\n')) {
      if (!l.includes('"backup failed"')) continue;
      const r = JSON.parse(l) as { port?: number; status?: string; stderrTail?: string };
      lines.push(`${h.address}:${r.port ?? '?'} ${r.status ?? 'failed'}: ${(r.stderrTail ?? '').trim().split('\n').join(' | ')}`);
    }
  }
  return lines.length > 0
    ? `why (from the agents' logs):\n${lines.join('\n')}`
    : `see the agents' logs: ${s.hosts.map((h) => h.log).join(' ')}`;
}

function backupFiles(root: string): string {
  const lines: string[] = [];
  let total = 0;
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const size = statSync(p).size;
        total += size;
        lines.push(`${formatBytes(size).padStart(9)}  ${relative(root, p)}`);
      }
    }
  };
  walk(root);
  lines.push(`${formatBytes(total).padStart(9)}  total, ${lines.length} files under ${root}`);
  return lines.join('\n');
}

/** Files below `root` (0 when it is not there). */
function countFiles(root: string): number {
  let n = 0;
  try {
    for (const e of readdirSync(root, { withFileTypes: true, recursive: true })) if (e.isFile()) n++;
  } catch {
    return 0;
  }
  return n;
}

/** The `bytes` of `backupId` in `list --format json` output, or undefined. */
function listBytes(output: string, backupId: string): number | undefined {
  try {
    const rows = JSON.parse(output.slice(output.indexOf('['))) as { backupId: string; bytes: number | null }[];
    return rows.find((r) => r.backupId === backupId)?.bytes ?? undefined;
  } catch {
    return undefined;
  }
}

function pokeHints(s: SandboxState): string {
  const sb = `spiderbackup --agent-config ${s.spiderAgentConfig}`;
  const spider = s.instances.find((i) => i.role === 'spider');
  const host = s.hosts[0];
  return [
    'Try:',
    `  ${sb} query                 # every task, newest first`,
    `  ${sb} schedule --wait       # another global backup`,
    `  ${sb} list                  # the backups, with their bytes in the repository (${s.base}/repository)`,
    ...(host ? [`  spiderbackup --agent-config ${host.agentConfig} status`, `  spiderbackup logs --file ${host.log}`] : []),
    ...(spider
      ? [`  mariadb -h ${spider.host} -P ${spider.port} -u ${ADMIN_USER} -p'${ADMIN_PASSWORD}' -e 'SELECT COUNT(*) FROM demo.orders'`]
      : []),
    `Stop it: spiderbackup sandbox down --dir ${s.base}`,
    '(from a checkout: node dist/src/bin/cli.js instead of spiderbackup)',
  ].join('\n');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `          ${l}`)
    .join('\n');
}

/** The real CLI as a child; each line of its output to `onLine` as it comes (stderr included). */
function runCli(args: string[], signal: AbortSignal, onLine?: (line: string) => void): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], signal, killSignal: 'SIGKILL' });
  let output = '';
  const collect = (stream: NodeJS.ReadableStream) => {
    const rl = createInterface({ input: stream });
    rl.on('line', (line) => {
      output += `${line}\n`;
      onLine?.(line);
    });
    return new Promise<void>((r) => rl.once('close', r));
  };
  const streams = Promise.all([collect(child.stdout), collect(child.stderr)]);
  return new Promise((resolve, reject) => {
    child.once('error', (err) => (signal.aborted ? undefined : reject(err)));
    child.once('close', (code) => void streams.then(() => resolve({ code, output })));
  });
}
