// `node dist/bench/restore-point.js [--points N]`: what a restore point costs and whether it holds.
// A cluster of two shards on distinct loopback addresses and two Spider nodes; a cross-shard
// transfer workload through both; N points per case, each checked by replaying the shards'
// binlogs from a base copy to the point (the balances must sum to the seeded total). Cases:
// BACKUP STAGE BLOCK_COMMIT with 2 and 8 clients, the same with spider_internal_xa=OFF, and
// FLUSH TABLES WITH READ LOCK (last: the issue saw it corrupt mysql.spider_xa_member).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { loadAgentConfig } from '../src/config/agent.js';
import { takeRestorePoint } from '../src/cluster/restore-point.js';
import type { RestorePoint } from '../src/cluster/restore-point-model.js';
import { openClusterSession } from '../src/cluster/session.js';
import { startCluster, type Cluster } from '../src/sandbox/cluster.js';
import { BankChecker, setupBank, startTransfers } from '../test/support/transfer-workload.js';
import type { BlockMethod } from '../src/sql/restore-point.js';
import { machine, markdownTable, progress, type Row } from './lib/report.js';

const { values } = parseArgs({ options: { points: { type: 'string', default: '20' } } });
const POINTS = Number(values.points);

interface Case {
  what: string;
  method: BlockMethod;
  clients: number;
  internalXa: boolean;
}

const CASES: Case[] = [
  { what: 'BACKUP STAGE BLOCK_COMMIT, 2 clients', method: 'backup-stage', clients: 2, internalXa: true },
  { what: 'BACKUP STAGE BLOCK_COMMIT, 8 clients', method: 'backup-stage', clients: 8, internalXa: true },
  { what: 'BACKUP STAGE BLOCK_COMMIT, 8 clients, spider_internal_xa=OFF', method: 'backup-stage', clients: 8, internalXa: false },
  { what: 'FLUSH TABLES WITH READ LOCK, 8 clients', method: 'ftwrl', clients: 8, internalXa: true },
];

const q = (xs: number[], f: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(f * s.length))] ?? 0;
};

progress('starting a cluster: 2 shards (127.0.0.2, 127.0.0.3), 2 Spider nodes with spider_internal_xa=ON, tdbctl stand-in');
const cluster: Cluster = await startCluster({ shards: 2, slaves: [], hosts: 'distinct', spiders: 2, spiderInternalXa: true, tdbctl: true });
const dir = mkdtempSync(join(tmpdir(), 'sb-bench-rp-'));
const rows: Row[] = [];
try {
  const ini = cluster.writeInstanceIni(dir, cluster.spider);
  writeFileSync(join(dir, 'agent.ini'), `[agent]\nconfig_dir = ${dir}\nstate_dir = ${join(dir, 'state')}\n`);
  const config = loadAgentConfig(join(dir, 'agent.ini'));
  const logger = pino({ level: 'silent' });
  await setupBank(cluster);
  const checker = await BankChecker.create(cluster);
  try {
    for (const [k, c] of CASES.entries()) {
      progress(`${c.what}: ${POINTS} points`);
      for (const s of cluster.spiders) await cluster.exec(s, `SET GLOBAL spider_internal_xa = ${c.internalXa ? 'ON' : 'OFF'}`);
      const transfers = await startTransfers(cluster, c.clients);
      const points: RestorePoint[] = [];
      let retried = 0;
      let refused = 0;
      const t0 = performance.now();
      const before = transfers.committed();
      for (let i = 0; i < POINTS; i++) {
        // A session per point, as each `restore-point` command opens its own.
        const session = openClusterSession(config, [ini]);
        try {
          const res = await takeRestorePoint({ config, logger }, session, { name: `bench${k}-${i}`, method: c.method });
          points.push(res.point);
          if (res.attempts > 1) retried++;
        } catch (err) {
          refused++;
          progress(`  point ${i}: ${(err as Error).message}`);
        } finally {
          await session.close();
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      const stats = await transfers.stop();
      let consistent = 0;
      for (const p of points) if ((await checker.check(p.shards.map((s) => s.gtid))).consistent) consistent++;
      const pause = points.map((p) => p.pauseMs);
      rows.push({
        what: c.what,
        now:
          `consistent ${consistent}/${points.length} (refused ${refused}, retried ${retried}); pause median ${q(pause, 0.5)} ms, ` +
          `max ${Math.max(0, ...pause)} ms (acquire median ${q(
            points.map((p) => p.acquireMs),
            0.5,
          )} ms, hold median ${q(
            points.map((p) => p.holdMs),
            0.5,
          )} ms); ${Math.round((transfers.committed() - before) / seconds)} transfers/s, ${stats.failed} failed`,
        target: c.internalXa ? 'all consistent, pause ~10-15 ms' : 'measure',
      });
    }
  } finally {
    await checker.close();
  }
} finally {
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`${machine()}\n\n${markdownTable(rows)}\n`);
