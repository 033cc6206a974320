// `node dist/bench/binlog-archive.js [--seconds N] [--max-lag 60s]`: the binlog archive under the
// cross-shard transfer workload. A cluster of two shards on distinct loopback addresses and two
// Spider nodes; one BinlogArchiver per master (as the daemon runs them) into a posix repository in
// a temp dir; the lag (as the metric defines it) sampled every second per master; then the time
// until the archive holds every master's position, and the binlog bytes archived per second.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { archiveReach } from '../src/archive/archive-index.js';
import { readShardArchive } from '../src/archive/archive-store.js';
import { covers, parseGtidPos } from '../src/archive/gtid.js';
import { parseDuration } from '../src/config/duration.js';
import { openRepository } from '../src/repo/repository.js';
import { BinlogArchiver } from '../src/daemon/binlog-archiver.js';
import { ADMIN_PASSWORD, ADMIN_USER, startCluster } from '../src/sandbox/cluster.js';
import { setupBank, startTransfers } from '../test/support/transfer-workload.js';
import { machine, markdownTable, progress, type Row } from './lib/report.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    'max-lag': { type: 'string', default: '60s' },
    clients: { type: 'string', default: '8' },
  },
});
const SECONDS = Number(values.seconds);
const MAX_LAG_MS = parseDuration(values['max-lag']) ?? 60_000;
const CLIENTS = Number(values.clients);

const q = (xs: number[], f: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(f * s.length))] ?? 0;
};

progress('starting a cluster: 2 shards (127.0.0.2, 127.0.0.3), 2 Spider nodes with spider_internal_xa=ON');
const cluster = await startCluster({ shards: 2, slaves: [], hosts: 'distinct', spiders: 2, spiderInternalXa: true });
const dir = mkdtempSync(join(tmpdir(), 'sb-bench-archive-'));
const rows: Row[] = [];
// Problems of the archivers on stderr, with the progress.
const logger = pino({ level: 'warn' }, pino.destination(2));
try {
  await setupBank(cluster);
  mkdirSync(join(dir, 'repo'));
  const repo = await openRepository(
    {
      file: 'bench',
      store: { type: 'posix', path: join(dir, 'repo') },
      prefix: 'bench',
      encryptionKeyFile: undefined,
      encryptionOldKeyFiles: [],
      rateLimit: undefined,
      partSize: 64 * 1024 ** 2,
      retentionKeep: undefined,
      retentionDays: undefined,
    },
    [],
  );
  const archivers = cluster.masters.map(
    (m) =>
      new BinlogArchiver({
        master: { host: m.host, port: m.port, user: ADMIN_USER, password: ADMIN_PASSWORD, shard: m.shardValue, role: 'master' },
        repo,
        spoolDir: join(dir, 'spool', `${m.host}_${m.port}`),
        serverId: 4294960001,
        maxLagMs: MAX_LAG_MS,
        logger,
      }),
  );
  for (const a of archivers) a.start();
  progress(`workload: ${CLIENTS} clients for ${SECONDS} s; lag sampled every second (max_lag ${MAX_LAG_MS / 1000} s)`);
  const transfers = await startTransfers(cluster, CLIENTS);
  const lags: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) {
    await new Promise((r) => setTimeout(r, 1000));
    await Promise.all(archivers.map((a) => a.checkLag()));
    for (const a of archivers) {
      const v = a.view();
      if (v.lagS !== undefined) lags.push(v.lagS);
    }
  }
  const stats = await transfers.stop();
  const workS = (performance.now() - t0) / 1000;
  const targets = await Promise.all(
    cluster.masters.map(async (m) => (await cluster.query<{ g: string }>(m, 'SELECT @@GLOBAL.gtid_binlog_pos AS g'))[0]?.g ?? ''),
  );
  progress('workload stopped; waiting for the archive to hold every master position');
  const t1 = performance.now();
  for (const [i, m] of cluster.masters.entries()) {
    for (;;) {
      const { files } = await readShardArchive(repo, m.shardValue);
      if (covers(parseGtidPos(archiveReach(files).newest), parseGtidPos(targets[i] as string))) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const catchUpS = (performance.now() - t1) / 1000;
  const bytes = archivers.reduce((n, a) => n + a.view().archivedBytes, 0);
  await Promise.all(archivers.map((a) => a.stop()));
  rows.push(
    {
      what: `archive lag under ${CLIENTS} clients (${Math.round(stats.committed / workS)} transfers/s, ${lags.length} samples over 2 masters)`,
      now: `p50 ${q(lags, 0.5).toFixed(1)} s, p99 ${q(lags, 0.99).toFixed(1)} s, max ${Math.max(0, ...lags).toFixed(1)} s`,
      target: `≤ max_lag (${MAX_LAG_MS / 1000} s); cut at max_lag/3`,
    },
    {
      what: 'archived binlog bytes per second (both masters, this host)',
      now: `${Math.round(bytes / workS)} B/s (${bytes} bytes in ${workS.toFixed(0)} s of workload)`,
      target: 'the masters write rate',
    },
    { what: 'catch-up after the workload stopped', now: `${catchUpS.toFixed(1)} s`, target: `≤ max_lag/3 + 1 s poll` },
  );
} finally {
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`${machine()}\n\n${markdownTable(rows)}\n`);
