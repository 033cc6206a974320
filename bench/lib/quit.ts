// How fast a `quit` takes effect: from the UPDATE … SET BackupStatus = 'quit' (committed) to the
// backup's process gone. The backup is the fake one, blocked until killed; each quit comes at a
// random moment of the tick, so the mean is the mean an operator sees.
import type { Instance } from '../../src/sandbox/cluster.js';
import { pidAlive, waitFor } from '../../test/support/workspace.js';
import { type BenchContext, withDaemon, workspaceFor } from './daemon.js';
import { duration, mean } from './proc.js';
import { progress, type Row } from './report.js';

const T = 'infodba_schema.global_backup';

export async function quitReaction(ctx: BenchContext, tickS: number, samples: number): Promise<number[]> {
  const { cluster } = ctx;
  const inst = cluster.masters[0] as Instance;
  progress(`quit: daemon tick ${tickS} s, ${samples} backups quit at random moments`);
  const ws = workspaceFor(cluster, [inst], { agent: { tick_interval: `${tickS}s` } });
  ws.behave(inst.port, { block: true });
  try {
    return await withDaemon(ws, async (d) => {
      const reactions: number[] = [];
      for (let i = 0; i < samples; i++) {
        const backupId = `bench-quit-${tickS}s-${i}-${Date.now()}`;
        await cluster.exec(
          inst,
          `INSERT INTO ${T} (ServerName, Wrapper, Host, Port, ShardValue, BackupId, BackupStatus, TaskPid, CreatedAt, UpdatedAt)
           VALUES (?, 'mysql', ?, ?, ?, ?, 'init', -1, NOW(), NOW())`,
          [`SPT${inst.shardValue}`, inst.host, inst.port, inst.shardValue, backupId],
        );
        // A reload ticks at once (and the ticks go on from there): the backup starts now, not at the next tick.
        d.signal('SIGHUP');
        const run = await waitFor(`backup ${backupId} to start`, () => ws.runs().find((r) => r.backupId === backupId), 60_000);
        await new Promise((r) => setTimeout(r, Math.random() * tickS * 1000));
        await cluster.exec(inst, `UPDATE ${T} SET BackupStatus = 'quit' WHERE BackupId = ? AND Port = ?`, [backupId, inst.port]);
        const t0 = performance.now();
        while (pidAlive(run.pid)) await new Promise((r) => setTimeout(r, 5));
        reactions.push(performance.now() - t0);
        await waitFor(
          `the quit of ${backupId} to be recorded`,
          async () => {
            const [row] = await cluster.query<{ s: string }>(inst, `SELECT BackupStatus AS s FROM ${T} WHERE BackupId = ?`, [backupId]);
            return row?.s.startsWith('quit:');
          },
          60_000,
        );
      }
      return reactions;
    });
  } finally {
    await cluster.exec(inst, `DELETE FROM ${T}`);
    ws.close();
  }
}

export async function quitRows(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [tickS, samples] of [
    [1, 10],
    [10, 5],
  ] as const) {
    const ms = await quitReaction(ctx, tickS, samples);
    rows.push({
      what: `quit reaction, daemon tick ${tickS} s (UPDATE … 'quit' → backup process gone; ${samples} quits)`,
      now: `mean ${duration(mean(ms))} (${duration(Math.min(...ms))}–${duration(Math.max(...ms))})`,
      target: `mean ≈ tick/2 = ${duration((tickS * 1000) / 2)}`,
    });
  }
  rows.push({
    what: 'quit reaction, old model: `check --run` from cron once a minute',
    now: 'mean 30 s, worst 60 s (computed: a quit waits for the next minute)',
    target: '(replaced by the daemon)',
  });
  return rows;
}
