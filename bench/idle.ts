// Idle cost of the daemon: 8 instance drop-ins (4 masters + 4 replicas of a real cluster), the
// default tick (10 s), metrics on, no backup to run. Prints RSS and CPU read from /proc.
//   npm run build && node dist/bench/idle.js [seconds=60] [warm-up seconds=20]
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startCluster } from '../test/harness/cluster.js';
import { freePort } from '../test/support/daemon.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../src/bin/cli.js');
const seconds = Number(process.argv[2] ?? 60);
const warmup = Number(process.argv[3] ?? 20);
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** utime+stime of the daemon, and cutime+cstime of the children it waited for (`ps`). */
function cpuTicks(pid: number): { own: number; children: number } {
  // fields after the ")" of comm start at field 3 (state); utime..cstime are fields 14-17
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

async function main(): Promise<void> {
  process.stdout.write('starting a cluster of 4 shards with a replica each (8 instances + spider)…\n');
  const cluster = await startCluster({ shards: 4, slaves: [0, 1, 2, 3] });
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-'));
  let daemon: ReturnType<typeof spawn> | undefined;
  try {
    const conf = join(dir, 'conf.d');
    const instances = [...cluster.masters, ...cluster.slaves];
    for (const i of instances) cluster.writeInstanceIni(conf, i);
    const port = await freePort();
    const ini = join(dir, 'spiderbackup.ini');
    writeFileSync(
      ini,
      `[agent]\nconfig_dir = ${conf}\nstate_dir = ${join(dir, 'state')}\n\n[metrics]\nlisten = 127.0.0.1:${port}\n\n[log]\nfile = ` +
        `${join(dir, 'agent.log')}\n`,
    );
    daemon = spawn(process.execPath, [CLI, 'daemon', '--agent-config', ini], { stdio: 'ignore' });
    const pid = daemon.pid as number;
    process.stdout.write(
      `daemon pid ${pid}, ${instances.length} instances (ports ${instances.map((i) => i.port).join(' ')}), tick 10s (default); warming ` +
        `up ${warmup}s…\n`,
    );
    await sleep(warmup * 1000);
    const scrape = async () => await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const ticks = (text: string) => Number(/^spiderbackup_ticks_total\{result="ok"\} (\d+)/m.exec(text)?.[1] ?? 0);
    const ticks0 = ticks(await scrape());
    const cpu0 = cpuTicks(pid);
    const t0 = performance.now();
    const rss: number[] = [];
    while (performance.now() - t0 < seconds * 1000) {
      rss.push(rssKiB(pid));
      await sleep(1000);
    }
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = cpuTicks(pid);
    const cpuS = (cpu1.own - cpu0.own) / CLK_TCK;
    const childS = (cpu1.children - cpu0.children) / CLK_TCK;
    const text = await scrape();
    const tickSum = Number(/^spiderbackup_tick_duration_seconds_sum (\S+)/m.exec(text)?.[1] ?? 0);
    const tickCount = Number(/^spiderbackup_tick_duration_seconds_count (\S+)/m.exec(text)?.[1] ?? 1);
    const mib = (k: number) => (k / 1024).toFixed(1);
    process.stdout.write(
      [
        `measured over ${wall.toFixed(1)} s (${ticks(text) - ticks0} ticks, mean tick ${((tickSum / tickCount) * 1000).toFixed(0)} ms):`,
        `  RSS   min ${mib(Math.min(...rss))} MiB, mean ${mib(rss.reduce((a, b) => a + b, 0) / rss.length)} MiB, max ` +
          `${mib(Math.max(...rss))} MiB`,
        `  CPU   ${cpuS.toFixed(2)} s = ${((cpuS / wall) * 100).toFixed(2)} % of one core (daemon itself)`,
        `        ${childS.toFixed(2)} s = ${((childS / wall) * 100).toFixed(2)} % more in the processes it runs per tick (ps for ` +
          `housekeeping)`,
        '',
      ].join('\n'),
    );
  } finally {
    daemon?.kill('SIGTERM');
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
