// Reading the binlog archive for a restore plan: the GTID state at a file/offset a backup recorded
// (a dump's snapshot position), when the master no longer has that file or cannot be reached.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { usableSegments, type ArchivedFile } from '../archive/archive-index.js';
import { fetchRun } from '../archive/archive-store.js';
import { BinlogScanner } from '../archive/binlog-scan.js';
import type { Repository } from '../repo/repository.js';

/**
 * The GTID state right after the event ending at `pos` of `file` of that server, from its archived
 * segments (a segment ending there says it; otherwise its bytes up to `pos` are scanned); undefined
 * when the archive does not hold that offset.
 */
export async function gtidInArchive(
  repo: Repository,
  files: readonly ArchivedFile[],
  server: { host: string; port: number },
  file: string,
  pos: number,
): Promise<string | undefined> {
  for (const f of files) {
    if (f.host !== server.host || f.port !== server.port || f.file !== file) continue;
    const { segments } = usableSegments(f);
    const ending = segments.find((s) => s.offset + s.length === pos);
    if (ending) return ending.endGtid;
    const k = segments.findIndex((s) => s.offset < pos && pos < s.offset + s.length);
    if (k === -1) continue;
    const dir = mkdtempSync(join(tmpdir(), 'sb-archive-pos-'));
    try {
      const path = await fetchRun(repo, { file: f, segments: segments.slice(0, k + 1), startGtid: '', stopGtid: '' }, dir);
      const scanner = new BinlogScanner();
      scanner.push(readFileSync(path).subarray(0, pos));
      if (scanner.state.end === pos) return scanner.state.state;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return undefined;
}
