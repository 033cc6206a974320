// Idle cost of the daemon: 8 instance drop-ins (4 masters + 4 replicas of a real cluster), the
// default tick (10 s), metrics on, no backup to run. Prints RSS and CPU read from /proc. The same
// measurement as the RSS rows of `npm run bench` (bench/lib/rss.ts), with the default tick.
//   npm run build && node dist/bench/idle.js [seconds=60] [warm-up seconds=20]
import { startCluster } from '../src/sandbox/cluster.js';
import { daemonRss } from './lib/rss.js';
import { mib } from './lib/proc.js';

const seconds = Number(process.argv[2] ?? 60);
const warmup = Number(process.argv[3] ?? 20);

process.stdout.write('starting a cluster of 4 shards with a replica each (8 instances + spider)…\n');
const cluster = await startCluster({ shards: 4, slaves: [0, 1, 2, 3] });
try {
  const instances = [...cluster.masters, ...cluster.slaves];
  const r = await daemonRss({ cluster, instances }, instances.length, { tick: '10s', warmUpS: warmup, windowS: seconds });
  process.stdout.write(
    [
      `measured over ${seconds} s (${r.ticks} ticks, tick 10 s):`,
      `  RSS   median ${mib(r.medianKiB)}, peak ${mib(r.peakKiB)} (the whole life of the daemon)`,
      `  CPU   ${r.cpuPercent.toFixed(2)} % of one core (daemon itself)`,
      '',
    ].join('\n'),
  );
} finally {
  await cluster.close();
}
