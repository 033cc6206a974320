// `list` over a long history: 4 shard masters with a replica each and a spider node, holding 0,
// 1,000 or 10,000 global backups, one an hour (9 tasks each: the spider master, 4 masters, 4
// replicas; 90,000 rows at 10,000). Times the whole `list` command, a process start included
// (median of 5), and `list --latest-complete` when the newest backup failed (the answer is the
// second newest). Run with `npm run build && node dist/bench/list.js` on the ports of
// SPIDERBACKUP_TEST_PORTS.
import { startCluster, type Cluster, type Instance } from '../src/sandbox/cluster.js';
import { Workspace } from '../test/support/workspace.js';
import { median } from './lib/proc.js';
import { machine, markdownTable, progress, type Row } from './lib/report.js';

const T = 'infodba_schema.global_backup';
const SIZES = [0, 1_000, 10_000];
const RUNS = 5;

/** `n` backups: all complete but the newest, which failed on shard 0. */
async function fill(cluster: Cluster, n: number): Promise<void> {
  for (const m of cluster.masters) await cluster.exec(m, `DELETE FROM ${T}`);
  await cluster.waitReplicated();
  if (n === 0) return;
  for (const m of cluster.masters) {
    const replica = cluster.slaves.find((s) => cluster.masterOf(s) === m) as Instance;
    const rows: [string, string, Instance, string][] = [
      [`SPT${m.shardValue}`, 'mysql', m, "IF(seq = 1 AND ? = 0, 'failed: exit code 1', 'success')"],
      [`SPT_SLAVE${m.shardValue}`, 'mysql_slave', replica, "'replicated'"],
    ];
    if (m.shardValue === 0) rows.push(['SPIDER0', 'SPIDER', cluster.spider, "'success'"]);
    for (const [name, wrapper, inst, status] of rows) {
      await cluster.exec(
        m,
        `INSERT INTO ${T} (ServerName, Wrapper, Host, Port, ShardValue, BackupId, BackupStatus, TaskPid, CreatedAt, UpdatedAt)
         SELECT ?, ?, ?, ?, ?, CONCAT('hist-', LPAD(seq, 6, '0')), ${status}, -1,
                NOW() - INTERVAL seq HOUR, NOW() - INTERVAL seq HOUR + INTERVAL 40 MINUTE
           FROM infodba_schema.seq_1_to_${n}`,
        [name, wrapper, inst.host, inst.port, m.shardValue, ...(status.includes('?') ? [m.shardValue] : [])],
      );
    }
  }
  await cluster.waitReplicated();
  // What each replica's agent would have written on the replica itself.
  for (const s of cluster.slaves)
    await cluster.exec(s, `UPDATE ${T} SET BackupStatus = 'success' WHERE Host = ? AND Port = ?`, [s.host, s.port]);
}

async function timed(ws: Workspace, args: string[]): Promise<{ ms: number; stdout: string }> {
  const times: number[] = [];
  let stdout = '';
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const r = await ws.cli(...args);
    times.push(performance.now() - t0);
    if (r.code !== 0 && !(args.includes('--latest-complete') && r.code === 1))
      throw new Error(`${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    stdout = r.stdout;
  }
  return { ms: median(times), stdout };
}

progress('starting a cluster: 4 shard masters with a replica each, a spider node and tdbctl');
const cluster = await startCluster({ shards: 4, slaves: [0, 1, 2, 3], tdbctl: true });
const ws = new Workspace();
const rows: Row[] = [];
try {
  const ini = cluster.writeInstanceIni(ws.confDir, cluster.spider);
  for (const n of SIZES) {
    progress(`list: ${n.toLocaleString('en')} backups`);
    await fill(cluster, n);
    const list = await timed(ws, ['-c', ini, 'list', '--format', 'json']);
    const shown = (JSON.parse(list.stdout) as { state: string }[]).length;
    rows.push({
      what: `list (20 newest of ${n.toLocaleString('en')} backups, ${shown} shown), whole command`,
      now: `${list.ms.toFixed(0)} ms`,
      target: '< 2 s',
    });
    const latest = await timed(ws, ['-c', ini, 'list', '--latest-complete']);
    rows.push({
      what: `list --latest-complete over ${n.toLocaleString('en')} backups (answer: ${latest.stdout.trim() || 'none'})`,
      now: `${latest.ms.toFixed(0)} ms`,
      target: '< 2 s',
    });
  }
} finally {
  await cluster.close();
  ws.close();
}
process.stdout.write(`Machine: ${machine()}\n\n${markdownTable(rows)}\n`);
