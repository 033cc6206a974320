// One instance's backup by a built-in runner: the real tool, through the compressor, into
// <BackupDir>/<backup_id>/<host>_<port>.partial/; then the manifest, written last and atomically;
// then the rename to <host>_<port>/. A failed or cancelled backup's partial directory is removed.
// With [repository] the compressed stream goes into the repository instead (repo-write.ts), and
// nothing is staged on the host. Right after, the agent checks its own output and publishes the
// verdict on the instance.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { backupDirOf, loadInstanceConfig, type InstanceConfig } from '../config/instance.js';
import { clusterNameOf } from '../config/repository.js';
import { withConnection, type Connection } from '../db/connect.js';
import { errorMessage } from '../errors.js';
import { fsyncDir } from '../fs.js';
import { binlogGtidPosAt } from '../sql/binlogs.js';
import { sourceInfo, spiderTables } from '../sql/source-info.js';
import type { RunnerSpec } from './args.js';
import { resolveUnder } from './paths.js';
import { isValidBackupId } from '../task/backup-id.js';
import { REASON } from '../task/status.js';
import { writeDefaultsFile, type DefaultsFile } from './defaults-file.js';
import { checkBackupDir, describeFile, MANIFEST_FILE, writeManifest, type Manifest, type ManifestFile } from './manifest.js';
import { openRepositoryOf } from '../repo/agent-repository.js';
import { listInstanceTasks } from '../sql/tasks.js';
import { CONNECT_TIMEOUT_MS, publishCheck } from './verdict.js';
import { checkRepoCopy, discardTarget, earlierAttempts, prepareTarget, putManifest, repoTarget, uploadObject } from './repo-write.js';
import {
  COMPRESS_ARGV,
  COMPRESSOR,
  DATA_FILE,
  masterPositionFromBackupLog,
  positionFromBackupLog,
  positionFromDumpHead,
  toolArgv,
  type Position,
} from './tools.js';

const LOG_TAIL_BYTES = 64 * 1024;
const DUMP_HEAD_BYTES = 64 * 1024;
const DUMP_TAIL_CHUNKS = 4;
const ABORT_GRACE_MS = 300;

export class RunnerError extends Error {
  override readonly name = 'RunnerError';
}

export interface BackupPaths {
  /** <BackupDir>/<backup_id> */
  base: string;
  /** <base>/<host>_<port>: complete only with its manifest. */
  final: string;
  /** <final>.partial: where the backup is written; never complete. */
  partial: string;
}

export function backupPaths(backupDir: string, key: { backupId: string; host: string; port: number }): BackupPaths {
  // The id comes from a row anyone with INSERT can write: it must never lead out of BackupDir.
  if (!isValidBackupId(key.backupId)) throw new RunnerError(`${REASON.invalidBackupId}: ${JSON.stringify(key.backupId)}`);
  try {
    const base = resolveUnder(backupDir, key.backupId);
    const final = resolveUnder(base, `${key.host}_${key.port}`);
    return { base, final, partial: resolveUnder(base, `${key.host}_${key.port}.partial`) };
  } catch (err) {
    throw new RunnerError(`${REASON.invalidBackupId}: ${errorMessage(err)}`);
  }
}

export interface RunnerIo {
  /** One line for the supervisor's log (stderr). */
  say(line: string): void;
  /** Set by the signal handler: stop now, remove the partial output. */
  signal: AbortSignal;
  /** With a repository: the bytes stored so far (the supervisor's progress). */
  progress?: (stored: number) => void;
}

export async function runBackup(spec: RunnerSpec, io: RunnerIo): Promise<number> {
  const instance = loadInstanceConfig(spec.instanceFile);
  const target = spec.repository ? repoTarget(await openRepositoryOf(spec.repository), spec.key) : undefined;
  const paths = target ? undefined : backupPaths(backupDirOf(instance), spec.key);
  const startedAt = new Date();
  const { info, spider, earlier } = await withConn(instance, async (c) => ({
    info: await sourceInfo(c),
    // Read through a Spider table, a dump would copy every shard's data into the spider node's backup.
    spider: spec.tool === 'mariadb-dump' ? await spiderTables(c) : [],
    earlier: target ? earlierAttempts(await listInstanceTasks(c, spec.key.host, spec.key.port), spec.key) : [],
  }));

  if (target) {
    const removed = await prepareTarget(target, earlier, spec.key);
    if (removed.length > 0) io.say(`removed what earlier attempts left in the repository: ${removed.join(', ')}`);
  } else if (paths) {
    if (existsSync(join(paths.final, MANIFEST_FILE)))
      throw new RunnerError(`${paths.final} already holds a complete backup; not overwritten`);
    // Left by a crash: incomplete by definition, and in the way.
    rmSync(paths.final, { recursive: true, force: true });
    rmSync(paths.partial, { recursive: true, force: true });
    mkdirSync(paths.partial, { recursive: true, mode: 0o750 });
  }

  const groups = spec.tool === 'mariadb-backup' ? ['client', 'mariadb-backup'] : ['client'];
  let defaults: DefaultsFile | undefined;
  let complete = false;
  let written = '';
  try {
    defaults = writeDefaultsFile(instance, groups);
    const version = await toolVersion(spec.tool);
    const replica = info.replica ?? spec.role === 'slave';
    const argv = toolArgv(spec.tool, {
      defaultsFile: defaults.path,
      scratch: defaults.dir,
      datadir: info.datadir,
      role: spec.role,
      logBin: info.logBin,
      replica,
      spiderTables: spider,
    });
    const dataFile = DATA_FILE[spec.tool];
    let uploaded: (ManifestFile & { keyId: string | undefined }) | undefined;
    // Into the repository: tool | compressor | (encryption) | upload, nothing staged on this host.
    const out = target
      ? async (stream: Readable) => {
          uploaded = await uploadObject(target, dataFile, stream, { signal: io.signal, ...(io.progress ? { onBytes: io.progress } : {}) });
        }
      : join((paths as BackupPaths).partial, dataFile);
    io.say(`${spec.tool} started for ${spec.key.host}:${spec.key.port} into ${target ? target.where : (paths as BackupPaths).partial}`);
    const { position, masterPosition } = await runPipeline(spec.tool, argv, out, io.signal, replica);
    // mariadb-dump reads @@gtid_binlog_pos a moment after its snapshot, commits in between; its
    // file/offset is the snapshot's (binlog_snapshot_file/pos): the server maps that to the GTID.
    if (spec.tool === 'mariadb-dump' && position.binlogFile && position.binlogPos !== undefined) {
      const { binlogFile, binlogPos } = position;
      const exact = await withConn(instance, (c) => binlogGtidPosAt(c, binlogFile, binlogPos)).catch(() => '');
      if (exact !== '') position.gtid = exact;
    }

    const file: ManifestFile = uploaded
      ? { name: uploaded.name, bytes: uploaded.bytes, sha256: uploaded.sha256 }
      : await describeFile((paths as BackupPaths).partial, dataFile);
    const manifest: Manifest = {
      format: 1,
      backupId: spec.key.backupId,
      cluster: clusterNameOf(instance) ?? '',
      host: spec.key.host,
      port: spec.key.port,
      role: spec.role,
      shardValue: spec.key.shardValue,
      tool: { name: spec.tool, version },
      compression: COMPRESSOR,
      serverVersion: info.version,
      startedAt: startedAt.toISOString(),
      endedAt: new Date().toISOString(),
      bytes: file.bytes,
      files: [file],
      position,
      ...(masterPosition ? { masterPosition } : {}),
      ...(uploaded?.keyId !== undefined ? { encryption: { keyId: uploaded.keyId } } : {}),
    };
    if (io.signal.aborted) throw new RunnerError('cancelled');
    if (target) {
      written = await putManifest(target, manifest);
    } else if (paths) {
      writeManifest(paths.partial, manifest);
      renameSync(paths.partial, paths.final);
      fsyncDir(paths.base);
    }
    complete = true;
  } finally {
    defaults?.remove();
    if (!complete && paths) rmSync(paths.partial, { recursive: true, force: true });
    if (!complete && target) await discardTarget(target);
  }

  // The agent's own check, right after the backup, where the files are.
  const where = target ? target.where : (paths as BackupPaths).final;
  const check = target ? await checkRepoCopy(target, written) : await checkBackupDir((paths as BackupPaths).final);
  const detail = await publishCheck(
    instance,
    spec.role === 'slave' || info.replica === true,
    spec.key,
    check,
    { role: spec.role, tool: spec.tool, dir: where },
    io.say,
  );
  if (!check.ok) {
    io.say(`backup written but its check failed: ${detail}`);
    return 1;
  }
  io.say(`backup complete in ${where} (${check.manifest?.bytes ?? 0} bytes, manifest sha256 ${check.manifestSha256})`);
  return 0;
}

async function toolVersion(tool: string): Promise<string> {
  const { code, out } = await capture([tool, '--version']);
  if (code !== 0) throw new RunnerError(`${tool} --version exited with ${code}: is ${tool} installed (scripts/install.sh)?`);
  return out.trim().split('\n')[0] ?? '';
}

function capture(argv: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', (err) => resolve({ code: null, out: err.message }));
    child.once('close', (code) => resolve({ code, out }));
  });
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    child.once('error', (error) => {
      if (child.pid === undefined) resolve({ code: null, signal: null, error });
    });
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
}

const describeExit = (name: string, e: Exit): string =>
  e.error ? `${name} could not start: ${e.error.message}` : e.signal ? `${name} killed by ${e.signal}` : `${name} exited with ${e.code}`;

/**
 * tool | compressor > file, with argument vectors and no shell. Both are our children, so the
 * supervisor's group kill reaches them; on `signal` they get SIGTERM here too.
 */
async function runPipeline(
  tool: RunnerSpec['tool'],
  argv: string[],
  /** A file to write, or what consumes the compressed stream (the upload). */
  out: string | ((compressed: Readable) => Promise<void>),
  signal: AbortSignal,
  replica: boolean,
): Promise<{ position: Position; masterPosition?: Position }> {
  const fd = typeof out === 'string' ? openSync(out, 'wx', 0o640) : undefined;
  let toolChild: ChildProcess;
  let zstd: ChildProcess;
  try {
    toolChild = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    zstd = spawn(COMPRESS_ARGV[0] as string, COMPRESS_ARGV.slice(1), { stdio: ['pipe', fd ?? 'pipe', 'pipe'] });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  // The agent's kill grace may be short (kill_grace): what does not end at once is killed, so
  // that the partial output is removed before the agent's own SIGKILL could reach this process.
  const onAbort = () => {
    toolChild.kill('SIGTERM');
    zstd.kill('SIGTERM');
    setTimeout(() => {
      for (const c of [toolChild, zstd]) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, ABORT_GRACE_MS).unref();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  let log = '';
  toolChild.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
    if (log.length > LOG_TAIL_BYTES) log = log.slice(log.length - LOG_TAIL_BYTES);
  });
  let zstdLog = '';
  zstd.stderr?.on('data', (d: Buffer) => (zstdLog = (zstdLog + d.toString()).slice(-4096)));
  let head = '';
  // mariadb-dump --gtid writes the GTID position at the end ("deferred gtid setting"): the last
  // chunks are kept, by reference, without copying the stream.
  const tail: Buffer[] = [];
  const scan = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (head.length < DUMP_HEAD_BYTES) head += chunk.toString('latin1', 0, Math.min(chunk.length, DUMP_HEAD_BYTES - head.length));
      tail.push(chunk);
      if (tail.length > DUMP_TAIL_CHUNKS) tail.shift();
      done(null, chunk);
    },
  });
  const piped = pipeline(toolChild.stdout!, scan, zstd.stdin!).catch((err: unknown) => err as Error);
  // A store that fails or refuses stops the tool: nothing else would read its output.
  const sunk =
    typeof out === 'string'
      ? Promise.resolve(undefined)
      : out(zstd.stdout!).then(
          () => undefined,
          (err: unknown) => {
            onAbort();
            return err as Error;
          },
        );
  const [te, ze, pipeErr, sinkErr] = await Promise.all([exitOf(toolChild), exitOf(zstd), piped, sunk]);
  signal.removeEventListener('abort', onAbort);
  if (signal.aborted) throw new RunnerError('cancelled');
  // The store's refusal is the cause: the tool and the compressor failed only because it stopped them.
  if (sinkErr) throw sinkErr;
  const toolFailed = te.code !== 0 ? `${describeExit(tool, te)}: ${lastLines(log)}` : undefined;
  const zstdFailed = ze.code !== 0 ? `${describeExit(COMPRESSOR, ze)}: ${lastLines(zstdLog)}` : undefined;
  // The first failing stage's error wins. A tool failing on its own ends its output and the
  // compressor then ends well; a compressor that fails (a full disk) breaks the tool's pipe, so
  // when both failed the compressor's error is the cause (the order of their exits tells nothing).
  if (zstdFailed) throw new RunnerError(toolFailed ? `${zstdFailed} (then ${toolFailed})` : zstdFailed);
  if (toolFailed) throw new RunnerError(toolFailed);
  if (pipeErr) throw new RunnerError(`${tool} | ${COMPRESSOR}: ${pipeErr.message}`);
  if (tool === 'mariadb-backup')
    return { position: positionFromBackupLog(log), ...(replica ? { masterPosition: masterPositionFromBackupLog(log) } : {}) };
  const ends = `${head}\n${Buffer.concat(tail).toString('latin1').slice(-DUMP_HEAD_BYTES)}`;
  // A replica's dump (--dump-slave) records only its master's position.
  return replica ? { position: {}, masterPosition: positionFromDumpHead(ends) } : { position: positionFromDumpHead(ends) };
}

/** The tool's last words, never its whole log (the supervisor keeps a short tail). */
function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ').slice(-1000);
}

const withConn = <T>(instance: InstanceConfig, fn: (c: Connection) => Promise<T>): Promise<T> =>
  withConnection(instance, fn, { connectTimeoutMs: CONNECT_TIMEOUT_MS });
