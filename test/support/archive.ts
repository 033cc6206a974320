// A stand-in for the daemon's binlog archiver (issue 19 item 1) in restore tests: every master's
// closed binlog files copied as a replica would (fetchBinlogs), scanned, and stored in the
// repository's archive in two or more segments each, as the archiver lays them out.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARCHIVE_FORMAT, type FileIndex } from '../../src/archive/archive-index.js';
import { readShardArchive, storeSegment } from '../../src/archive/archive-store.js';
import { BinlogScanner } from '../../src/archive/binlog-scan.js';
import type { Repository } from '../../src/repo/repository.js';
import { fetchBinlogs } from '../../src/restore/binlog-replay.js';
import { ADMIN_PASSWORD, ADMIN_USER, type Cluster } from '../../src/sandbox/cluster.js';

export interface Archived {
  files: number;
  segments: number;
}

/**
 * FLUSH BINARY LOGS on every master, then each closed file not archived yet stored in `pieces`
 * segments (cut at whole events). Shard n's archive is masters[n]'s files.
 */
export async function archiveBinlogs(cluster: Cluster, repo: Repository, pieces = 3): Promise<Archived> {
  const out: Archived = { files: 0, segments: 0 };
  for (const [shard, m] of cluster.masters.entries()) {
    await cluster.exec(m, 'FLUSH BINARY LOGS');
    const logs = await cluster.query<{ Log_name: string }>(m, 'SHOW BINARY LOGS');
    const closed = logs.slice(0, -1).map((l) => l.Log_name);
    const [{ id }] = (await cluster.query<{ id: number }>(m, 'SELECT @@server_id AS id')) as [{ id: number }];
    const have = new Set(
      (await readShardArchive(repo, shard)).files.filter((f) => f.host === m.host && f.port === m.port && f.closed).map((f) => f.file),
    );
    const todo = closed.filter((f) => !have.has(f));
    if (todo.length === 0) continue;
    const dir = mkdtempSync(join(tmpdir(), 'sb-test-archive-'));
    try {
      const paths = await fetchBinlogs({ host: m.host, port: m.port, user: ADMIN_USER, password: ADMIN_PASSWORD }, todo, dir);
      for (const [i, path] of paths.entries()) {
        const bytes = readFileSync(path);
        // The file's Gtid_list (its start) from a first pass: a small first piece may end before it.
        const whole = new BinlogScanner();
        whole.push(bytes);
        const scanner = new BinlogScanner();
        let index: FileIndex | undefined;
        for (let k = 1; k <= pieces; k++) {
          scanner.push(bytes.subarray(Math.floor(((k - 1) * bytes.length) / pieces), Math.floor((k * bytes.length) / pieces)));
          const range = scanner.takeRange();
          if (range.to === range.from) continue;
          index ??= {
            format: ARCHIVE_FORMAT,
            shard,
            host: m.host,
            port: m.port,
            serverId: Number(id),
            file: todo[i] as string,
            fileStart: whole.state.fileStart ?? '',
            closed: false,
            segments: [],
          };
          index = await storeSegment(repo, index, bytes.subarray(range.from, range.to), range, k === pieces && scanner.state.closed);
          out.segments++;
        }
        if (scanner.state.end !== bytes.length) throw new Error(`${todo[i]}: scanned ${scanner.state.end} of ${bytes.length} bytes`);
        out.files++;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}
