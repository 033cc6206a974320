// The binlog archive in the repository (README "Binlog archive"):
//   <prefix>/binlogs/shard-<n>/<host>_<port>/<file>~<tag>/<offset>.zst   a segment: whole events, zstd, maybe encrypted
//   <prefix>/binlogs/shard-<n>/<host>_<port>/<file>~<tag>/index.json     the file's index, rewritten after each segment
// `<tag>` tells apart two files of one name (a server's binlog reset): a digest of its server id
// and Gtid_list. A segment's object is stored before the index names it, so an index never names
// an object that was not whole; a segment stored again after a crash has the same key (no duplicate).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errorMessage } from '../errors.js';
import { downloadChecked, upload, type Repository } from '../repo/repository.js';
import { RepoError } from '../repo/store.js';
import { COMPRESSOR } from '../runner/tools.js';
import { ARCHIVE_FORMAT, type ArchivedFile, type FileIndex, type ReplayRun, type Segment } from './archive-index.js';
import type { ScannedRange } from './binlog-scan.js';

export const INDEX_OBJECT = 'index.json';

/** `<prefix>/binlogs/` */
export const binlogsKey = (repo: Repository): string => `${repo.prefix}/binlogs/`;

/** `<prefix>/binlogs/shard-<n>/` */
export function shardArchiveKey(repo: Repository, shard: number): string {
  if (!Number.isInteger(shard) || shard < 0) throw new RepoError(`invalid shard ${shard}`);
  return `${binlogsKey(repo)}shard-${shard}/`;
}

/** The folder of one binlog file's segments and index. */
export function fileFolderKey(repo: Repository, f: Pick<FileIndex, 'shard' | 'host' | 'port' | 'serverId' | 'file' | 'fileStart'>): string {
  if (!/^[A-Za-z0-9._:-]+$/.test(f.host) || !Number.isInteger(f.port))
    throw new RepoError(`invalid instance ${JSON.stringify(`${f.host}:${f.port}`)}`);
  if (!/^[A-Za-z0-9._-]+$/.test(f.file) || f.file.startsWith('.'))
    throw new RepoError(`invalid binlog file name ${JSON.stringify(f.file)}`);
  const tag = createHash('sha256').update(`${f.serverId}\n${f.fileStart}`).digest('hex').slice(0, 8);
  return `${shardArchiveKey(repo, f.shard)}${f.host}_${f.port}/${f.file}~${tag}/`;
}

export const segmentObject = (offset: number): string => `${String(offset).padStart(12, '0')}.zst`;

const isoOf = (unix: number): string => (unix === 0 ? '' : new Date(unix * 1000).toISOString());

/**
 * Stores one segment (the binlog bytes `range` describes) and then the file's index naming it.
 * `index` is the file's index before this segment (no segments for a new file); returns the new one.
 */
export async function storeSegment(
  repo: Repository,
  index: FileIndex,
  bytes: Buffer,
  range: ScannedRange,
  closed: boolean,
): Promise<FileIndex> {
  if (bytes.length !== range.to - range.from)
    throw new RepoError(`segment of ${index.file}: ${bytes.length} bytes for ${range.from}…${range.to}`);
  const folder = fileFolderKey(repo, index);
  const object = segmentObject(range.from);
  const compressed = await zstd(['-q', '-c', '-3'], bytes);
  const stored = await upload(repo, `${folder}${object}`, Readable.from([compressed]));
  const segment: Segment = {
    offset: range.from,
    length: bytes.length,
    object,
    storedBytes: stored.bytes,
    sha256: stored.sha256,
    encrypted: stored.keyId !== undefined,
    keyId: stored.keyId,
    startGtid: range.startGtid,
    endGtid: range.endGtid,
    firstGtid: range.firstGtid,
    lastGtid: range.lastGtid,
    firstEventTime: isoOf(range.firstTime),
    lastEventTime: isoOf(range.lastTime),
    archivedAt: new Date().toISOString(),
  };
  const next: FileIndex = { ...index, closed, segments: [...index.segments.filter((s) => s.offset !== range.from), segment] };
  await repo.store.putObject(`${folder}${INDEX_OBJECT}`, Buffer.from(`${JSON.stringify(next, null, 1)}\n`));
  return next;
}

export interface ArchiveView {
  files: ArchivedFile[];
  /** Index documents that could not be read or parsed, each naming the object. */
  problems: string[];
}

/** Every file index of one shard's archive, each with the segment objects it names that are gone. */
export async function readShardArchive(repo: Repository, shard: number): Promise<ArchiveView> {
  const listed = await repo.store.list(shardArchiveKey(repo, shard));
  const present = new Set(listed.map((o) => o.key));
  const files: ArchivedFile[] = [];
  const problems: string[] = [];
  for (const o of listed) {
    if (!o.key.endsWith(`/${INDEX_OBJECT}`)) continue;
    const folder = o.key.slice(0, -INDEX_OBJECT.length);
    try {
      const body = await repo.store.getObject(o.key);
      if (!body) continue; // removed since the listing (expire)
      const index = parseIndex(body, o.key);
      // An index read after the listing may name a segment stored since (the archiver runs on):
      // missing is only what the store says is not there when asked again.
      const missing: string[] = [];
      for (const s of index.segments)
        if (!present.has(`${folder}${s.object}`) && (await repo.store.stat(`${folder}${s.object}`)) === undefined) missing.push(s.object);
      files.push({ ...index, folder, missing });
    } catch (err) {
      problems.push(`${repo.store.where}:${o.key}: ${errorMessage(err)}`);
    }
  }
  return { files, problems };
}

function parseIndex(body: Buffer, key: string): FileIndex {
  const v = JSON.parse(body.toString('utf8')) as Partial<FileIndex>;
  if (v.format !== ARCHIVE_FORMAT || !Array.isArray(v.segments) || typeof v.file !== 'string' || typeof v.fileStart !== 'string')
    throw new RepoError(`${key}: not a binlog archive index of format ${ARCHIVE_FORMAT}`);
  return v as FileIndex;
}

/**
 * Writes the run's segments, checked and decrypted, one after the other into `dir/<file>`: the
 * file's bytes from its start up to the run's last segment, for `mariadb-binlog` to decode.
 */
export async function fetchRun(repo: Repository, run: ReplayRun, dir: string): Promise<string> {
  const path = join(dir, `${run.file.file}~${run.file.folder.split('/').at(-2)?.split('~')[1] ?? ''}`);
  // One handle written segment after segment: a stream piped into once per segment (end: false)
  // kept every pipe's listeners until it ended, one more per segment.
  const out = await open(path, 'w');
  try {
    for (const s of run.segments) {
      const stored = await downloadChecked(repo, `${run.file.folder}${s.object}`, { bytes: s.storedBytes, sha256: s.sha256 }, s.encrypted);
      const child = spawn(COMPRESSOR, ['-q', '-d', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
      const exit = new Promise<number | null>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', resolve);
      });
      await Promise.all([pipeline(stored, child.stdin), appendTo(out, child.stdout)]);
      const code = await exit;
      if (code !== 0) throw new RepoError(`${run.file.folder}${s.object}: zstd -d exited ${code}: ${err.trim()}`);
    }
  } finally {
    await out.close();
  }
  return path;
}

async function appendTo(out: FileHandle, from: AsyncIterable<Buffer>): Promise<void> {
  for await (const chunk of from) await out.writeFile(chunk);
}

/** zstd over a buffer (a child process, as the backups' compressor). */
function zstd(args: string[], input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(COMPRESSOR, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve(Buffer.concat(chunks)) : reject(new RepoError(`zstd exited ${code}: ${err.trim()}`)),
    );
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}
