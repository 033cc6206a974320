// The idle daemon's memory (resident set) with 8, 32 and 64 instance drop-ins. The cluster has 8
// real instances; more drop-ins point at them through TCP forwarders (distinct ports, so each is
// an instance of its own to the daemon; it finds no task of theirs). Metrics are on, as by default.
import type { Instance } from '../../src/sandbox/cluster.js';
import { freePort } from '../../test/support/daemon.js';
import { type BenchContext, withDaemon, workspaceFor } from './daemon.js';
import { forward, type Forwarder } from './forward.js';
import { cpuMs, median, mib, peakRssKiB, rssKiB } from './proc.js';
import { progress, type Row } from './report.js';

export interface RssOptions {
  /** Default 1s: many ticks in a short window (an idle tick allocates what it allocates, whatever the interval). */
  tick?: string;
  warmUpS?: number;
  windowS?: number;
}

export interface RssResult {
  instances: number;
  medianKiB: number;
  peakKiB: number;
  /** CPU of the daemon over the window, in % of one core. */
  cpuPercent: number;
  ticks: number;
}

export async function daemonRss(ctx: BenchContext, count: number, opts: RssOptions = {}): Promise<RssResult> {
  const { cluster, instances } = ctx;
  const tick = opts.tick ?? '1s';
  const warmUpS = opts.warmUpS ?? 5;
  const windowS = opts.windowS ?? 25;
  const forwarders: Forwarder[] = [];
  const taken = new Set(instances.map((i) => i.port));
  const dropIns: Instance[] = [];
  try {
    for (let k = 0; k < count; k++) {
      const real = instances[k % instances.length] as Instance;
      if (k < instances.length) {
        dropIns.push(real);
        continue;
      }
      const f = await forward(real, taken);
      forwarders.push(f);
      dropIns.push({ ...real, port: f.port });
    }
    const how = forwarders.length ? ` (${instances.length} real, ${forwarders.length} through forwarders)` : '';
    progress(`rss: daemon over ${count} instances${how}, tick ${tick}, ${warmUpS} s warm-up, ${windowS} s sampled`);
    const ws = workspaceFor(cluster, dropIns, { agent: { tick_interval: tick }, metrics: { listen: `127.0.0.1:${await freePort()}` } });
    try {
      return await withDaemon(ws, async (d) => {
        await new Promise((r) => setTimeout(r, warmUpS * 1000));
        const first = d.lastTick()?.startedAt;
        const cpu0 = cpuMs(d.pid);
        const t0 = performance.now();
        const samples: number[] = [];
        const ticks = new Set<string>();
        while (performance.now() - t0 < windowS * 1000) {
          samples.push(rssKiB(d.pid));
          const t = d.lastTick()?.startedAt;
          if (t !== undefined && t !== first) ticks.add(t);
          await new Promise((r) => setTimeout(r, 200));
        }
        const cpuPercent = ((cpuMs(d.pid) - cpu0) / (performance.now() - t0)) * 100;
        return { instances: count, medianKiB: median(samples), peakKiB: peakRssKiB(d.pid), cpuPercent, ticks: ticks.size };
      });
    } finally {
      ws.close();
    }
  } finally {
    for (const f of forwarders) await f.close();
  }
}

const TARGET_PEAK_MIB: Record<number, number> = { 8: 80, 64: 100 };

export async function rssRows(ctx: BenchContext, counts: number[] = [8, 32, 64]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const count of counts) {
    const r = await daemonRss(ctx, count);
    const target = TARGET_PEAK_MIB[count];
    rows.push({
      what: `idle daemon RSS, ${count} instances (median / peak; tick 1 s, metrics on; CPU)`,
      now: `${mib(r.medianKiB)} / ${mib(r.peakKiB)}; CPU ${r.cpuPercent.toFixed(1)} %`,
      target: target === undefined ? '—' : `peak ≤ ${target} MiB`,
    });
  }
  return rows;
}
