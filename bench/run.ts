// `npm run bench`: every benchmark of the efficiency work in one run, one table on stdout (progress
// on stderr). Starts its own cluster (4 shard masters with a replica each, and a spider node) on
// the ports of SPIDERBACKUP_TEST_PORTS, like the tests. About 5 minutes on 2 cores.
//
//   npm run bench                              all sections
//   npm run bench -- --only idle,quit          some: startup, idle, rss, quit, history, progress, repository
//                                              (repository: 1 GiB into a private Swift, needs scripts/install.sh)
//   npm run bench -- --scale                   also bench/scale.ts (minutes more), if it exists
//   npm run bench -- --restore                 also bench/restore-cluster.ts (2, 4 and 8 shards; ~8 minutes more)
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCluster } from '../src/sandbox/cluster.js';
import type { BenchContext } from './lib/daemon.js';
import { historyRows } from './lib/history.js';
import { progressRows } from './lib/progress.js';
import { idleCost } from './lib/idle-cost.js';
import { quitRows } from './lib/quit.js';
import { repositoryRows } from './lib/repository.js';
import { machine, markdownTable, progress, type Row } from './lib/report.js';
import { rssRows } from './lib/rss.js';
import { startupRows } from './lib/startup.js';

const SECTIONS = ['startup', 'idle', 'rss', 'quit', 'history', 'progress', 'repository'] as const;
/** Sections that start no cluster of their own. */
const STANDALONE: readonly Section[] = ['startup', 'progress', 'repository'];
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: { only: { type: 'string' }, scale: { type: 'boolean', default: false }, restore: { type: 'boolean', default: false } },
});
const only = values.only?.split(',').map((s) => s.trim());
const bad = only?.find((s) => !(SECTIONS as readonly string[]).includes(s));
if (bad !== undefined) {
  process.stderr.write(`bench: unknown section "${bad}" (sections: ${SECTIONS.join(', ')})\n`);
  process.exit(2);
}
const wanted = (s: Section) => only === undefined || only.includes(s);

const t0 = performance.now();
const host = machine();
const rows: Row[] = [];
const extra: string[] = [];
const restoreExtra: string[] = [];

if (wanted('startup')) rows.push(...(await startupRows()));
if (wanted('progress')) rows.push(...(await progressRows()));
if (wanted('repository')) rows.push(...(await repositoryRows()));

if (SECTIONS.some((s) => !STANDALONE.includes(s) && wanted(s))) {
  progress('starting a cluster: 4 shard masters with a replica each, and a spider node');
  const cluster = await startCluster({ shards: 4, slaves: [0, 1, 2, 3] });
  const ctx: BenchContext = { cluster, instances: [...cluster.masters, ...cluster.slaves] };
  try {
    if (wanted('idle')) rows.push(...(await idleCost(ctx)));
    if (wanted('rss')) rows.push(...(await rssRows(ctx)));
    if (wanted('quit')) rows.push(...(await quitRows(ctx)));
    if (wanted('history')) rows.push(...(await historyRows(ctx)));
  } finally {
    await cluster.close();
  }
}

if (values.scale) {
  const scale = join(dirname(fileURLToPath(import.meta.url)), 'scale.js');
  if (existsSync(scale)) {
    progress('scale: bench/scale.ts');
    const out = await runScale(scale);
    rows.push(...out.rows);
    extra.push(...out.other);
  } else {
    progress('scale: bench/scale.ts does not exist (yet); skipped');
  }
}

if (values.restore) {
  progress('restore: bench/restore-cluster.ts');
  const out = await runScale(join(dirname(fileURLToPath(import.meta.url)), 'restore-cluster.js'));
  restoreExtra.push(out.stdout.trim());
  if (out.code !== 0) restoreExtra.push(`(bench/restore-cluster.js exited with ${out.code})`);
}

process.stdout.write(`Machine: ${host}\n\n${markdownTable(rows)}\n`);
if (extra.length) process.stdout.write(`\nbench/scale.ts:\n${extra.join('\n')}\n`);
if (restoreExtra.length) process.stdout.write(`\nbench/restore-cluster.ts:\n\n${restoreExtra.join('\n')}\n`);
progress(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);

/**
 * Runs bench/scale.js (or another bench file). A stdout line that is a JSON object with string `what`, `now` and `target`
 * becomes a row of the table; any other line is printed below it (`stdout`: all of it, as printed).
 * Its stderr is passed through.
 */
async function runScale(file: string): Promise<{ rows: Row[]; other: string[]; stdout: string; code: number | null }> {
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const result = { rows: [] as Row[], other: [] as string[], stdout: out, code };
  for (const line of out.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const v = JSON.parse(line) as Partial<Row>;
      if (typeof v.what === 'string' && typeof v.now === 'string' && typeof v.target === 'string') {
        result.rows.push({ what: v.what, now: v.now, target: v.target });
        continue;
      }
    } catch {
      // not a row
    }
    result.other.push(line);
  }
  if (code !== 0) result.other.push(`(${file} exited with ${code})`);
  return result;
}
