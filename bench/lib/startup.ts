// Cold start of the CLI: a new process for `--version` and `--help`, against `node -e 0` (Node's
// own start-up on this machine). Wall time from spawn to exit, median; peak RSS (VmHWM) read by a
// tiny preload as the process exits, in separate runs so that it costs the timed runs nothing.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../../test/support/workspace.js';
import { duration, median, mib } from './proc.js';
import { progress, type Row } from './report.js';

const RUNS = 10;
const RSS_RUNS = 3;

function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { stdio: 'ignore', env });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${args.join(' ')}: exit ${code}`))));
  });
}

export async function startupRows(): Promise<Row[]> {
  const cases: { name: string; args: string[] }[] = [
    { name: 'node -e 0', args: ['-e', '0'] },
    { name: '--version', args: [CLI, '--version'] },
    { name: '--help', args: [CLI, '--help'] },
  ];
  progress(`start-up: ${RUNS} cold runs each of ${cases.map((c) => c.name).join(', ')}`);
  const times = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (const c of cases) await run(c.args); // warm the page cache
  for (let i = 0; i < RUNS; i++) for (const c of cases) times.get(c.name)?.push(await run(c.args));

  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-hwm-'));
  const rss = new Map<string, number>();
  try {
    const preload = join(dir, 'hwm.cjs');
    writeFileSync(
      preload,
      "process.on('exit', () => require('fs').writeFileSync(process.env.SB_BENCH_HWM, " +
        "/VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]));\n",
    );
    for (const c of cases) {
      const peaks: number[] = [];
      for (let i = 0; i < RSS_RUNS; i++) {
        const out = join(dir, `hwm-${i}`);
        await run(['-r', preload, ...c.args], { ...process.env, SB_BENCH_HWM: out });
        peaks.push(Number(readFileSync(out, 'utf8')));
      }
      rss.set(c.name, median(peaks));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const node = median(times.get('node -e 0') ?? []);
  const nodeRss = rss.get('node -e 0') ?? NaN;
  return cases
    .filter((c) => c.name !== 'node -e 0')
    .map((c) => {
      const t = median(times.get(c.name) ?? []);
      const r = rss.get(c.name) ?? NaN;
      return {
        what: `cold \`spiderbackup ${c.name}\` vs \`node -e 0\`: wall time (median of ${RUNS}), peak RSS`,
        now: `${duration(t)} vs ${duration(node)} (${(t / node).toFixed(2)}×); ${mib(r)} vs ${mib(nodeRss)}`,
        target: `≤ 2× node -e 0 (${duration(2 * node)})`,
      };
    });
}
