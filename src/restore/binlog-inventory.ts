// Which of a shard's binlog files a roll-forward from one GTID position to another needs, and
// whether they are all still on the shard (for restore plans and `verify --restore-test --to-point`).
import type { Queryable } from '../db/connect.js';
import { binlogStartGtid, listBinaryLogs } from '../sql/binlogs.js';
import { binlogGtidPos } from '../sql/restore-point.js';
import { binlogRange, parseGtidPos, type BinlogFile, type BinlogRange } from '../archive/gtid.js';

/** One statement per binlog file the server keeps, plus two: meant for operator commands, not ticks. */
export async function binlogRangeOn(q: Queryable, fromGtid: string, toGtid: string): Promise<BinlogRange> {
  const names = await listBinaryLogs(q);
  const files: BinlogFile[] = [];
  for (const name of names) files.push({ name, start: parseGtidPos(await binlogStartGtid(q, name)) });
  const current = parseGtidPos(await binlogGtidPos(q));
  return binlogRange(files, current, parseGtidPos(fromGtid), parseGtidPos(toGtid));
}

/** One line for a plan or a test report. */
export function describeRange(shard: string, r: BinlogRange): string {
  const parts = [`${shard}: replay ${r.files.length === 0 ? 'nothing' : r.files.join(' ')}`];
  if (r.gone) parts.push(`GONE: binlogs before ${r.gone.oldestKept} were purged (domains ${r.gone.domains.join(', ')})`);
  if (r.notReached) parts.push(`NOT REACHED: the shard's binlog is behind the point (domains ${r.notReached.join(', ')})`);
  return parts.join('; ');
}
