// `node dist/bench/pitr-control.js [--trials 20] [--seconds 20]`: why restores go to restore points
// and not to wall-clock times (issue 19's control). Two shards on distinct loopback addresses, two
// Spider nodes with spider_internal_xa, the cross-shard transfer workload through both. Each shard
// is rolled forward from a base copy to "time T" the way binlog tools restore to a time (every
// transaction whose binlog event time is at or before T, per shard: mariadb-binlog --stop-datetime
// does the same), for `trials` random T within the workload; then to as many restore points taken
// during the same workload. A restore is consistent when the balances sum to the seeded total and
// no XA transaction is left prepared. Prints one Markdown table.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { loadAgentConfig } from '../src/config/agent.js';
import { takeRestorePoint } from '../src/cluster/restore-point.js';
import type { RestorePoint } from '../src/cluster/restore-point-model.js';
import { openClusterSession } from '../src/cluster/session.js';
import { startCluster, type Cluster, type Instance } from '../src/sandbox/cluster.js';
import { BankChecker, setupBank, startTransfers } from '../test/support/transfer-workload.js';
import { machine, markdownTable, progress, type Row } from './lib/report.js';
import { toolOutput } from '../test/support/tool-output.js';

const { values } = parseArgs({ options: { trials: { type: 'string', default: '20' }, seconds: { type: 'string', default: '20' } } });
const TRIALS = Number(values.trials);
const SECONDS = Number(values.seconds);

/** Per shard: every transaction's GTID in binlog order with its event time (Unix seconds), decoded by mariadb-binlog. */
async function transactionTimes(cluster: Cluster, m: Instance): Promise<{ time: number; gtid: string }[]> {
  const files = (await cluster.query<{ Log_name: string }>(m, 'SHOW BINARY LOGS')).map((r) => join(m.datadir, r.Log_name));
  const text = await toolOutput('mariadb-binlog', ['--no-defaults', ...files]);
  const out: { time: number; gtid: string }[] = [];
  // "#261205 15:40:01 server id 1  end_log_pos 1234 CRC32 0x0a1b2c3d 	GTID 0-1-45 trans" (the server's local time)
  const re = /^#(\d\d)(\d\d)(\d\d) +(\d+):(\d\d):(\d\d) server id \d+ .*\tGTID (\d+-\d+-\d+)/gm;
  for (const g of text.matchAll(re)) {
    const [, yy, mo, dd, hh, mi, ss, gtid] = g as unknown as string[];
    const time = new Date(2000 + Number(yy), Number(mo) - 1, Number(dd), Number(hh), Number(mi), Number(ss)).getTime() / 1000;
    out.push({ time, gtid: gtid as string });
  }
  return out;
}

/** The shard's position at time T: its last transaction whose event time is at or before T. */
function positionAt(txs: readonly { time: number; gtid: string }[], t: number, base: string): string {
  let pos = base;
  for (const x of txs) {
    if (x.time > t) break;
    pos = x.gtid;
  }
  return pos;
}

progress('starting a cluster: 2 shards (distinct addresses), 2 Spider nodes with spider_internal_xa=ON, tdbctl stand-in');
const cluster = await startCluster({ shards: 2, slaves: [], hosts: 'distinct', spiders: 2, spiderInternalXa: true, tdbctl: true });
const dir = mkdtempSync(join(tmpdir(), 'sb-bench-pitr-'));
const rows: Row[] = [];
try {
  const ini = cluster.writeInstanceIni(dir, cluster.spider);
  writeFileSync(join(dir, 'agent.ini'), `[agent]\nconfig_dir = ${dir}\nstate_dir = ${join(dir, 'state')}\n`);
  const config = loadAgentConfig(join(dir, 'agent.ini'));
  const logger = pino({ level: 'silent' });
  await setupBank(cluster);
  // One checker for the times and one for the points: each only rolls forward.
  const byTime = await BankChecker.create(cluster);
  const byPoint = await BankChecker.create(cluster);
  try {
    progress(`${SECONDS} s of transfers (8 clients), a restore point every ${Math.max(1, Math.round(SECONDS / TRIALS))} s or so`);
    const transfers = await startTransfers(cluster, 8);
    const t0 = Date.now() / 1000;
    const points: RestorePoint[] = [];
    while (Date.now() / 1000 - t0 < SECONDS) {
      const session = openClusterSession(config, [ini]);
      try {
        points.push((await takeRestorePoint({ config, logger }, session, { name: `ctl-${points.length}` })).point);
      } catch (err) {
        progress(`  a point refused: ${(err as Error).message}`);
      } finally {
        await session.close();
      }
      await new Promise((r) => setTimeout(r, (SECONDS * 1000) / Math.max(TRIALS, 1)));
    }
    const stats = await transfers.stop();
    const t1 = Date.now() / 1000;
    const perShard = await Promise.all(cluster.masters.map((m) => transactionTimes(cluster, m)));
    // Whole seconds inside the workload, as an operator would name a time; ascending (the checker rolls forward).
    const times = [...Array(TRIALS).keys()].map(() => Math.floor(t0 + 1 + Math.random() * Math.max(1, t1 - t0 - 2))).sort((a, b) => a - b);
    let timeOk = 0;
    let lastSums: string[] = [];
    for (const t of times) {
      const r = await byTime.check(perShard.map((txs, i) => positionAt(txs, t, byTime.base[i] as string)));
      if (r.consistent) timeOk++;
      else lastSums.push(`sum ${r.sum}, ${r.preparedXa} XA prepared`);
    }
    let pointOk = 0;
    for (const p of points) if ((await byPoint.check(p.shards.map((s) => s.gtid))).consistent) pointOk++;
    lastSums = lastSums.slice(0, 3);
    rows.push({
      what: `restores to a wall-clock time (whole seconds, each shard to its last transaction at or before it; ${TRIALS} random times in ${Math.round(t1 - t0)} s of transfers)`,
      now: `inconsistent ${TRIALS - timeOk} of ${TRIALS}${lastSums.length ? ` (e.g. ${lastSums.join('; ')})` : ''}`,
      target: 'the control: a time is not a cut across shards',
    });
    rows.push({
      what: `restores to restore points taken during the same workload`,
      now: `consistent ${pointOk} of ${points.length}; ${stats.committed} transfers committed, ${stats.failed} failed`,
      target: `all consistent`,
    });
  } finally {
    await byTime.close();
    await byPoint.close();
  }
} finally {
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`${machine()}\n\n${markdownTable(rows)}\n`);
