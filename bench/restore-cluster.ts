// `node dist/bench/restore-cluster.js [--shards 2,4,8] [--rows N]`: how long `spiderbackup restore`
// (issue 20) takes per shard and in all. Per shard count: a source cluster (shards on distinct
// loopback addresses, the built-in mariadb-dump runner, a posix repository) seeded with N rows per
// shard and a short cross-shard transfer workload, backed up, a restore point after it, its binlogs
// archived; then a restore onto a fresh target cluster on other loopback addresses (N masters and
// a spider node). One agent per target master: the host lock lets a host run one restore task at a
// time, so shards restore in parallel only when each is served by its own host (workspace); the
// spider node shares master 0's host (its task comes after every shard's). Prints each task's
// time per phase from its state object, the bytes fetched, the restore's wall time, the slowest
// shard, total / slowest and the core count. Numbers only, nothing asserted.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadAgentConfig } from '../src/config/agent.js';
import { commandLineOf } from '../src/host/processes.js';
import { configuredRepository } from '../src/repo/agent-repository.js';
import type { RestoreOutcome, RestoreRecord, RestoreTaskState } from '../src/recovery/job.js';
import type { Instance } from '../src/sandbox/cluster.js';
import { archiveBinlogs } from '../test/support/archive.js';
import type { TestCluster } from '../test/support/cluster.js';
import { DaemonProcess } from '../test/support/daemon.js';
import { setupBank, startTransfers } from '../test/support/transfer-workload.js';
import { waitFor } from '../test/support/workspace.js';
import { machine, progress } from './lib/report.js';
import {
  posixRepository,
  setUpSource,
  setUpTargets,
  waitForPresence,
  writePasswordFile,
  writeTargetFile,
} from '../test/support/restore-clusters.js';

const { values } = parseArgs({
  options: {
    shards: { type: 'string', default: '2,4,8' },
    rows: { type: 'string', default: '100000' },
    transfers: { type: 'string', default: '300' },
  },
});
const SHARDS = values.shards.split(',').map((s) => Number(s.trim()));
const ROWS = Number(values.rows);
const TRANSFERS = Number(values.transfers);
const badShards = SHARDS.find((n) => !Number.isInteger(n) || n < 1 || n > 32);
if (badShards !== undefined || !Number.isInteger(ROWS) || ROWS < 1 || !Number.isInteger(TRANSFERS) || TRANSFERS < 0) {
  process.stderr.write(
    `bench: --shards ${values.shards} --rows ${values.rows} --transfers ${values.transfers}: expected shard counts 1..32, rows >= 1, transfers >= 0\n`,
  );
  process.exit(2);
}
const PREFIX = 'rb';
/** The targets' addresses start here: above the source's (127.0.0.2 + shards + spider + tdbctl). */
const TARGET_BASE = 100;

// Whatever is running is torn down on Ctrl-C / SIGTERM too, newest first.
const cleanups: (() => Promise<void> | void)[] = [];
async function cleanUp(): Promise<void> {
  while (cleanups.length > 0) {
    const c = cleanups.pop()!;
    try {
      await c();
    } catch (err) {
      progress(`clean-up: ${(err as Error).message}`);
    }
  }
}
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    progress(`${sig}: cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  });

interface TaskTimes {
  what: string;
  shard?: number;
  phaseMs: Partial<Record<'fetch' | 'load' | 'replay' | 'route', number>>;
  allMs: number;
  /** From the command writing restore.json to the agent claiming the task. */
  claimAfterMs: number;
  fetchedBytes: number;
}

interface RunResult {
  shards: number;
  agents: number;
  totalMs: number;
  commandMs: number;
  tasks: TaskTimes[];
}

const ms = (iso: string) => Date.parse(iso);

/**
 * An interrupted run: the target agents' restore workers are detached (their own process group)
 * and outlive their agent; each is named by pid in its task's state object. A worker whose target
 * instance was shut down mid-replay was seen to ignore SIGTERM, hence the SIGKILL of its group.
 */
async function stopWorkers(restoresDir: string): Promise<void> {
  const pids: number[] = [];
  for (const id of existsSync(restoresDir) ? readdirSync(restoresDir) : []) {
    const dir = join(restoresDir, id, 'state');
    for (const f of existsSync(dir) ? readdirSync(dir) : []) {
      const state = JSON.parse(readFileSync(join(dir, f), 'utf8')) as RestoreTaskState;
      const argv = commandLineOf(state.agent.pid);
      if (argv?.includes('spiderbackup-restorer') && argv.includes(`--restore-id=${id}`)) pids.push(state.agent.pid);
    }
  }
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  await waitFor('restore workers to end', () => pids.every((p) => commandLineOf(p) === undefined), 10_000).catch(() => {});
  for (const pid of pids)
    if (commandLineOf(pid) !== undefined)
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
}

/** A task's times from its state object: each phase's own, and claimed → done. */
function taskTimes(what: string, shard: number | undefined, s: RestoreTaskState, createdAt: string): TaskTimes {
  const phaseMs: TaskTimes['phaseMs'] = {};
  let fetchedBytes = 0;
  for (const p of s.phases) {
    if (p.phase === 'fetch' || p.phase === 'load' || p.phase === 'replay' || p.phase === 'route') {
      if (p.endedAt !== undefined) phaseMs[p.phase] = ms(p.endedAt) - ms(p.startedAt);
      if (p.phase === 'fetch') fetchedBytes = p.bytes ?? 0;
    }
  }
  const first = s.phases[0];
  const last = s.phases.at(-1);
  const allMs = first && last ? ms(last.endedAt ?? last.startedAt) - ms(first.startedAt) : 0;
  const claimAfterMs = first ? ms(first.startedAt) - ms(createdAt) : 0;
  return { what, shard, phaseMs, allMs, claimAfterMs, fetchedBytes };
}

async function oneRun(n: number): Promise<RunResult> {
  const tmp = mkdtempSync(join(tmpdir(), 'sb-bench-restore-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const repoDir = join(tmp, 'repo');
  mkdirSync(repoDir);
  const passwordFile = writePasswordFile(tmp);
  const repository = posixRepository(repoDir, PREFIX);

  progress(`${n} shards: starting the source (${n} masters on 127.0.0.2+, a spider node, tdbctl)`);
  const source = await setUpSource({
    shards: n,
    config: { repository },
    workspaces: {
      ws: {
        serves: ['spider0', ...Array.from({ length: n }, (_, i) => `master${i}`)],
        // Up to 8 agents and as many mariadb clients share the cores: give them time to claim.
        config: { backup: { runner: 'mariadb-dump' }, restore: { claim_timeout: '5m' } },
      },
    },
  });
  cleanups.push(() => source.close());
  const { ws } = source.workspaces;
  const spiderIni = ws.dropIn(source.spider);
  const repo = await configuredRepository(loadAgentConfig(ws.agentIni));
  if (!repo) throw new Error('the source workspace has no repository');

  progress(`${n} shards: starting the targets (${n} masters and a spider node on 127.0.0.${TARGET_BASE}+), ${n} agents`);
  const targets: TestCluster = await setUpTargets(TARGET_BASE, { shards: n, config: { repository, archive: { binlogs: 'off' } } });
  cleanups.push(() => targets.close());
  const agents: DaemonProcess[] = [];
  for (const [i, m] of targets.masters.entries()) {
    const host = targets.workspace({ serves: i === 0 ? [m, targets.spider] : [m] });
    const agent = new DaemonProcess(host);
    agents.push(agent);
    cleanups.push(() => agent.dispose());
  }
  await Promise.all(agents.map((a) => a.ready()));
  cleanups.push(() => stopWorkers(join(repoDir, PREFIX, 'restores')));

  progress(`${n} shards: seeding ${ROWS} rows per shard, the bank, ${TRANSFERS} transfers`);
  await setupBank(source);
  await Promise.all(
    source.masters.map(async (m) => {
      await source.exec(m, 'CREATE DATABASE filler');
      await source.exec(m, 'CREATE TABLE filler.t (id INT NOT NULL PRIMARY KEY, pad VARCHAR(200) NOT NULL) ENGINE=InnoDB');
      await source.exec(m, `INSERT INTO filler.t SELECT seq, REPEAT(MD5(seq), 6) FROM filler.seq_1_to_${ROWS}`);
    }),
  );
  const transfers = await startTransfers(source, 4);
  try {
    await waitFor('transfers under way', () => transfers.committed() >= TRANSFERS / 2, 300_000);
    progress(`${n} shards: backup`);
    const s = await ws.cli('schedule', '-c', spiderIni, '--backup-id=gbench1', '--no-restore-point');
    if (s.code !== 0) throw new Error(`schedule: ${s.stderr}`);
    const run = await ws.cli('check', '--run');
    if (run.code !== 0) throw new Error(`check --run: ${run.stdout}\n${run.stderr}`);
    const after = transfers.committed();
    await waitFor('transfers after the backup', () => transfers.committed() >= after + TRANSFERS / 2, 300_000);
    const p = await ws.cli('restore-point', 'pbench1', '-c', spiderIni, '--format', 'json');
    if (p.code !== 0) throw new Error(`restore-point: ${p.stderr}`);
  } finally {
    await transfers.stop();
  }
  progress(`${n} shards: archiving the binlogs`);
  await archiveBinlogs(source, repo);
  await waitForPresence(targets, [...targets.masters, targets.spider], 120_000);

  const target = writeTargetFile(join(tmp, 'target.json'), targets, passwordFile);
  progress(`${n} shards: restore`);
  const t0 = performance.now();
  const r = await ws.cli('restore', 'gbench1', '--to-point', 'pbench1', '--target', target, '--format', 'json');
  const commandMs = performance.now() - t0;
  const outcome = JSON.parse(r.stdout) as RestoreOutcome;
  if (r.code !== 0 || !outcome.result || !outcome.restoreId)
    throw new Error(`restore (exit ${r.code}): ${outcome.problems.join('; ')}\n${r.stderr}`);
  const base = join(repoDir, PREFIX, 'restores', outcome.restoreId);
  const record = JSON.parse(readFileSync(join(base, 'restore.json'), 'utf8')) as RestoreRecord;
  const stateDir = join(base, 'state');
  const byFile = new Map(
    readdirSync(stateDir).map((f) => [f, JSON.parse(readFileSync(join(stateDir, f), 'utf8')) as RestoreTaskState] as const),
  );
  const stateOf = (inst: Instance) => {
    const s = byFile.get(`${inst.host}_${inst.port}.json`);
    if (!s) throw new Error(`no state object for ${inst.host}:${inst.port}`);
    return s;
  };
  const tasks = [
    ...targets.masters.map((m, i) => taskTimes(`shard ${i}`, i, stateOf(m), record.createdAt)),
    taskTimes('spider node', undefined, stateOf(targets.spider), record.createdAt),
  ];
  const result: RunResult = { shards: n, agents: agents.length, totalMs: outcome.result.totalMs, commandMs, tasks };
  await cleanUp();
  return result;
}

const sec = (x: number | undefined) => (x === undefined ? '-' : (x / 1000).toFixed(1));
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

function table(r: RunResult): string {
  const lines = [
    `${r.shards} shards (${r.agents} target hosts, one agent each; the spider node on shard 0's host):`,
    '',
    '| task | claimed after s | fetch s | load s | replay s | route s | in all s | fetched MiB |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const t of r.tasks)
    lines.push(
      `| ${t.what} | ${sec(t.claimAfterMs)} | ${sec(t.phaseMs.fetch)} | ${sec(t.phaseMs.load)} | ${sec(t.phaseMs.replay)} | ${sec(t.phaseMs.route)} | ${sec(t.allMs)} | ${t.shard === undefined ? '-' : mib(t.fetchedBytes)} |`,
    );
  const shards = r.tasks.filter((t) => t.shard !== undefined);
  const slowest = shards.reduce((a, b) => (b.allMs > a.allMs ? b : a));
  const sum = shards.reduce((a, t) => a + t.allMs, 0);
  // The shards' own span, first claim to last shard done: what the parallelism of the shards gives.
  const span = Math.max(...shards.map((t) => t.claimAfterMs + t.allMs)) - Math.min(...shards.map((t) => t.claimAfterMs));
  lines.push(
    '',
    `total ${sec(r.totalMs)} s (the command: ${sec(r.commandMs)} s with its plan and checks); slowest shard: ${slowest.what}, ${sec(slowest.allMs)} s; ` +
      `total / slowest ${(r.totalMs / slowest.allMs).toFixed(2)}; the shards' span ${sec(span)} s, sum of the shards / span ${(sum / span).toFixed(2)}; ` +
      `cores ${availableParallelism()}`,
  );
  return lines.join('\n');
}

// Each run's table as soon as it is there: a later run failing keeps the earlier ones.
process.stdout.write(`Machine: ${machine()}; --rows ${ROWS} per shard, --transfers ${TRANSFERS}\n`);
try {
  for (const n of SHARDS) process.stdout.write(`\n${table(await oneRun(n))}\n`);
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await cleanUp();
}
