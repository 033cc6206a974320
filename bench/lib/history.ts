// The daemon's tick on one instance whose table holds 0, 1,000 or 100,000 finished tasks of its own
// (all within the 30 days the purge keeps), without and with the secondary index
// idx_host_port_status (Host, Port, BackupStatus). The tick's duration is the daemon's own
// (status.json), median of several ticks.
import type { Instance } from '../../src/sandbox/cluster.js';
import type { DaemonProcess } from '../../test/support/daemon.js';
import { type BenchContext, withDaemon, workspaceFor } from './daemon.js';
import { duration, median, mib, peakRssKiB } from './proc.js';
import { progress, type Row } from './report.js';

const T = 'infodba_schema.global_backup';
export const INDEX = 'idx_host_port_status';
const SIZES = [0, 1_000, 100_000];
const TICKS = 6;

/** Replaces the table's rows with `n` finished tasks of `inst`, created over the last 29 days. */
async function fill(ctx: BenchContext, inst: Instance, n: number): Promise<void> {
  const { cluster } = ctx;
  await cluster.exec(inst, `DELETE FROM ${T}`);
  if (n === 0) return;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`bad row count ${n}`);
  // seq_1_to_<n>: MariaDB's sequence engine, a table of the integers 1..n (in any database).
  await cluster.exec(
    inst,
    `INSERT INTO ${T} (ServerName, Wrapper, Host, Port, ShardValue, BackupId, BackupStatus, TaskPid, CreatedAt, UpdatedAt)
     SELECT ?, 'mysql', ?, ?, ?, CONCAT('history-', seq), IF(seq % 10 = 0, 'failed: exit code 1', 'success'), 1000 + seq % 30000,
            NOW() - INTERVAL (seq % 41760) MINUTE, NOW() - INTERVAL (seq % 41760) MINUTE
       FROM infodba_schema.seq_1_to_${n}`,
    [`SPT${inst.shardValue}`, inst.host, inst.port, inst.shardValue],
  );
}

async function setIndex(ctx: BenchContext, inst: Instance, on: boolean): Promise<void> {
  await ctx.cluster.exec(
    inst,
    on ? `ALTER TABLE ${T} ADD INDEX IF NOT EXISTS ${INDEX} (Host, Port, BackupStatus)` : `ALTER TABLE ${T} DROP INDEX IF EXISTS ${INDEX}`,
  );
}

async function tickMs(d: DaemonProcess): Promise<number> {
  await d.nextTicks(2); // the first tick after a change may have started before it
  return median((await d.nextTicks(TICKS)).map((t) => t.durationMs));
}

export async function historyRows(ctx: BenchContext): Promise<Row[]> {
  const { cluster } = ctx;
  const inst = cluster.masters[1] ?? (cluster.masters[0] as Instance);
  const hadIndex = (await cluster.query(inst, `SHOW INDEX FROM ${T} WHERE Key_name = ?`, [INDEX])).length > 0;
  const ws = workspaceFor(cluster, [inst], { agent: { tick_interval: '1s' } });
  const rows: Row[] = [];
  try {
    await withDaemon(ws, async (d) => {
      let base: number | undefined;
      for (const n of SIZES) {
        progress(`history: ${n.toLocaleString('en')} rows on one instance`);
        await fill(ctx, inst, n);
        const ms: Record<'plain' | 'indexed', number> = { plain: NaN, indexed: NaN };
        for (const on of [false, true]) {
          await setIndex(ctx, inst, on);
          ms[on ? 'indexed' : 'plain'] = await tickMs(d);
        }
        base ??= Math.min(ms.plain, ms.indexed);
        rows.push({
          what:
            `daemon tick, 1 instance, ${n.toLocaleString('en')} rows of history (without / with ${INDEX}; median of ${TICKS}); ` +
            'daemon peak RSS so far',
          now: `${duration(ms.plain)} / ${duration(ms.indexed)}; ${mib(peakRssKiB(d.pid))}`,
          target: n === 0 ? '—' : `≈ the 0-row tick (${duration(base)}); RSS ≤ 100 MiB`,
        });
      }
    });
  } finally {
    await cluster.exec(inst, `DELETE FROM ${T}`);
    await setIndex(ctx, inst, hadIndex);
    ws.close();
  }
  return rows;
}
