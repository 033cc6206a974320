// What an idle daemon costs: statements and connections per instance per tick, counted by the
// instances (`Questions`, `Connections`), and the daemon's CPU per tick against one cold
// `check --run` (what the once-a-minute cron job cost) over the same instances.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { CounterSet, delta, perTick } from '../../test/support/status-counters.js';
import { CLI } from '../../test/support/workspace.js';
import { type BenchContext, withDaemon, workspaceFor } from './daemon.js';
import { cpuMs, duration, mean, median, waitedChildrenCpuMs } from './proc.js';
import { progress, type Row } from './report.js';

const TICKS = 10;
const COLD_RUNS = 5;

export async function idleCost(ctx: BenchContext): Promise<Row[]> {
  const { cluster, instances } = ctx;
  const n = instances.length;
  progress(`idle cost: daemon with tick 1 s over ${n} idle instances, ${TICKS} ticks counted`);
  const ws = workspaceFor(cluster, instances, { agent: { tick_interval: '1s' } });
  const counters = await CounterSet.open(instances);
  try {
    const m = await withDaemon(ws, async (d) => {
      await d.nextTicks(2); // past the first tick, which also purges old rows
      const a = await counters.read();
      const cpu0 = cpuMs(d.pid);
      const ticks = await d.nextTicks(TICKS);
      const b = await counters.read();
      const cpu1 = cpuMs(d.pid);
      const windowMs = Date.parse(ticks.at(-1)?.finishedAt as string) - Date.parse(ticks[0]?.startedAt as string);
      return {
        during: a.map((x, i) => delta(x, b[i] as typeof x)),
        windowMs,
        cpuPerTick: (cpu1 - cpu0) / TICKS,
        tickMs: median(ticks.map((t) => t.durationMs)),
      };
    });
    progress(`idle cost: the same ${(m.windowMs / 1000).toFixed(1)} s without the daemon (what reading the counters costs)`);
    const idle = await counters.baseline(m.windowMs);
    const cost = perTick(m.during, idle, TICKS);

    progress(`idle cost: ${COLD_RUNS} cold \`check --run\` over the same ${n} instances`);
    const cold: { cpu: number; wall: number }[] = [];
    for (let i = 0; i < COLD_RUNS; i++) cold.push(await coldCheck(ws.agentIni, ws.dir));
    const coldCpu = median(cold.map((c) => c.cpu));
    const coldWall = median(cold.map((c) => c.wall));
    const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
    return [
      {
        what: `statements per idle instance per tick (daemon, tick 1 s, ${n} instances, ${TICKS} ticks)`,
        now: `${mean(cost.statements).toFixed(2)} (per instance ${range(cost.statements)})`,
        target: '≤ 2',
      },
      {
        what: 'connections opened per idle instance per tick',
        now: `${mean(cost.connections).toFixed(2)} (per instance ${range(cost.connections)})`,
        target: '0 after start',
      },
      {
        what: `CPU per check step, ${n} idle instances: daemon tick vs cold \`check --run\` (median of ${COLD_RUNS})`,
        now:
          `${duration(m.cpuPerTick)} vs ${duration(coldCpu)} CPU (${(coldCpu / m.cpuPerTick).toFixed(0)}×); ` +
          `wall ${duration(m.tickMs)} vs ${duration(coldWall)}`,
        target: 'tick ≤ 1/10 of a cold run',
      },
    ];
  } finally {
    await counters.close();
    ws.close();
  }
}

/** One `check --run` as cron ran it: a new process. Its CPU comes from this process's waited-for children. */
async function coldCheck(agentIni: string, cwd: string): Promise<{ cpu: number; wall: number }> {
  await sleep(100); // let the previous one's exit settle
  const cpu0 = waitedChildrenCpuMs();
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, '--agent-config', agentIni, 'check', '--run'], { cwd, stdio: 'ignore' });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  const wall = performance.now() - t0;
  if (code !== 0) throw new Error(`check --run exited with ${code}`);
  return { cpu: waitedChildrenCpuMs() - cpu0, wall };
}
