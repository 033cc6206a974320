// The supervisor's progress measurement (host/progress.ts) at its bound: a BackupDir holding
// 20,000 files of older backups (20 directories of 1,000) beside the running backup's 1,000 new
// files. It runs every PROGRESS_EVERY_MS while a backup runs, so its CPU is what a backup costs
// the host on top of itself. Median of 7.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesWrittenSince, PROGRESS_EVERY_MS, WALK_LIMITS } from '../../src/host/progress.js';
import { median } from './proc.js';
import { progress, type Row } from './report.js';

const RUNS = 7;

export async function progressRows(): Promise<Row[]> {
  progress('progress: measuring a BackupDir of 20,000 old files and 1,000 new ones');
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-progress-'));
  try {
    const past = new Date(Date.now() - 86_400_000);
    for (let b = 0; b < 20; b++) {
      const d = join(dir, `old-${b}`, 'db');
      mkdirSync(d, { recursive: true });
      for (let i = 0; i < 1000; i++) writeFileSync(join(d, `t${i}.sql`), 'x');
      for (let i = 0; i < 1000; i++) utimesSync(join(d, `t${i}.sql`), past, past);
      utimesSync(d, past, past);
      utimesSync(join(dir, `old-${b}`), past, past);
    }
    const start = Date.now();
    const fresh = join(dir, 'running', 'db');
    mkdirSync(fresh, { recursive: true });
    for (let i = 0; i < 1000; i++) writeFileSync(join(fresh, `t${i}.sql`), Buffer.alloc(1024));
    const wall: number[] = [];
    const cpu: number[] = [];
    let bytes = 0;
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      bytes = (await bytesWrittenSince(dir, start)).bytes;
      const c = process.cpuUsage(c0);
      wall.push(performance.now() - t0);
      cpu.push((c.user + c.system) / 1000);
    }
    const cpuMs = median(cpu);
    return [
      {
        what:
          `progress measurement, BackupDir with 20,000 old files + 1,000 new (bound ${WALK_LIMITS.maxEntries.toLocaleString('en-US')} ` +
          `entries; every ${PROGRESS_EVERY_MS / 1000} s while a backup runs; median of ${RUNS})`,
        now:
          `${cpuMs.toFixed(0)} ms CPU, ${median(wall).toFixed(0)} ms wall (${((cpuMs / PROGRESS_EVERY_MS) * 100).toFixed(1)} % of a core); ` +
          `counted ${bytes === 1000 * 1024 ? 'every new byte' : `${bytes} of ${1000 * 1024} bytes`}`,
        target: '≤ 5 % of a core; every new byte counted',
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
