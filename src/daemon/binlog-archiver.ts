// One shard master's binlog archiver (README "Binlog archive"): a child `mariadb-binlog
// --read-from-remote-server --raw --stop-never` streams the master's binlog into a spool directory
// as a replica would; this process polls the spool every second, scans the new bytes and stores
// whole transactions as segments in the repository (object first, then the file's index). A
// closed file fully stored leaves the spool. The child restarts with backoff; every (re)start
// reads the shard's archive again to find where to go on, so nothing is missing or stored twice.
import { closeSync, mkdirSync, openSync, readSync, rmSync, statSync, unlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { archiveReach, ARCHIVE_FORMAT, type FileIndex } from '../archive/archive-index.js';
import { readShardArchive, storeSegment } from '../archive/archive-store.js';
import { chooseStart, cutAgeOf, purgeRisk, shouldCut, archiveLagSeconds, type MasterFile } from '../archive/archiver-rules.js';
import { BinlogScanner } from '../archive/binlog-scan.js';
import { covers, mergeGtidPos, parseGtidPos } from '../archive/gtid.js';
import { connect, type Connection, type Endpoint } from '../db/connect.js';
import { errorMessage } from '../errors.js';
import { killStray, spawnArgv, waitForExit } from '../host/processes.js';
import type { Repository } from '../repo/repository.js';
import { binlogStartGtid, listBinaryLogs } from '../sql/binlogs.js';
import { binlogPosition, binlogRole } from '../sql/binlog-source.js';
import { userSchemas } from '../sql/recovery.js';

export const RESTART = { firstMs: 1000, capMs: 60_000 } as const;
const POLL_MS = 1000;
const READ_CHUNK = 4 * 1024 ** 2;
const STORE_CHECK_MS = 30_000;

export interface MasterSpec extends Endpoint {
  shard: number;
  /** The drop-in's MysqlRole (the metrics' `role` label). */
  role: string;
}

export interface ArchiverOptions {
  master: MasterSpec;
  repo: Repository;
  /** This master's own spool directory (emptied at each start of the stream). */
  spoolDir: string;
  /** `[archive] server_id`. */
  serverId: number;
  maxLagMs: number;
  logger: Logger;
  binlogTool?: string;
}

/** What `status` and the metrics show of one archiver. */
export interface ArchiverView {
  host: string;
  port: number;
  role: string;
  shard: number;
  /** Seconds behind the master (undefined until the first look at its position). */
  lagS: number | undefined;
  /** The last GTID archived from this master's stream (or the archive's newest state at start). */
  archived: string;
  /** The file streamed now. */
  file: string | undefined;
  /** What keeps it from archiving (the child's stderr, a store error …); undefined while it works. */
  problem: string | undefined;
  /** A hole in the shard's archive found at start (a file purged before it was archived). */
  gap: string | undefined;
  /** The master's purge policy could remove a file not archived yet. */
  purgeWarning: string | undefined;
  /** Binlog bytes stored since the archiver started. */
  archivedBytes: number;
  /** Why it does not stream this master yet, nothing being wrong (an empty restore target); undefined while it streams. */
  waiting?: string | undefined;
}

/** Nothing is wrong, but this master is not to be streamed now: looked at again after WAIT_MS. */
class NotYet extends Error {}
const WAIT_MS = 30_000;

const stripBrackets = (s: string): string => s.trim().replace(/^\[/, '').replace(/\]$/, '').trim();

export class BinlogArchiver {
  private stopped = false;
  private child: ChildProcess | undefined;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private readonly startedAt = Date.now();
  private caughtUpAt: number | undefined;
  /** Unix ms of the last event stored (event times are whole seconds: the end of that second). */
  private lastArchivedEventMs: number | undefined;
  private lagConn: Connection | undefined;
  /** The stream's scanner and where it is: set while a stream runs. */
  private stream: { file: string; scanner: BinlogScanner; pendingSeenMs: number | undefined } | undefined;
  private purgeWarned = false;
  /** When the store was last seen usable (checked again before a segment after STORE_CHECK_MS). */
  private checkedAt = 0;
  private readonly v: ArchiverView;
  private readonly cutAgeMs: number;

  constructor(private readonly o: ArchiverOptions) {
    this.v = {
      host: o.master.host,
      port: o.master.port,
      role: o.master.role,
      shard: o.master.shard,
      lagS: undefined,
      archived: '',
      file: undefined,
      problem: undefined,
      gap: undefined,
      purgeWarning: undefined,
      archivedBytes: 0,
    };
    this.cutAgeMs = cutAgeOf(o.maxLagMs);
  }

  get name(): string {
    return `${this.o.master.host}:${this.o.master.port}`;
  }

  view(): ArchiverView {
    return { ...this.v };
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Ends the stream (SIGTERM to the child) and waits for the segment being stored, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.child?.kill('SIGTERM');
    this.wake?.();
    await this.loop;
    await this.lagConn?.close().catch(() => {});
    this.lagConn = undefined;
  }

  private log(): Logger {
    return this.o.logger;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      const began = Date.now();
      try {
        await this.session();
        if (!this.stopped) this.noteProblem('the binlog stream ended');
      } catch (err) {
        if (err instanceof NotYet) {
          if (this.v.waiting !== err.message)
            this.log().info({ port: this.o.master.port, why: err.message }, 'binlog archiver: not streamed yet');
          this.v.waiting = err.message;
          this.v.problem = undefined;
          failures = 0;
          await this.sleep(WAIT_MS);
          continue;
        }
        this.noteProblem(errorMessage(err));
      }
      if (this.stopped) break;
      // A stream that ran a while was fine: start over from the first delay.
      if (Date.now() - began > RESTART.capMs) failures = 0;
      const delay = Math.min(RESTART.firstMs * 2 ** failures, RESTART.capMs);
      failures++;
      this.log().info({ port: this.o.master.port, delayMs: delay }, 'binlog archiver: restarting the stream after a pause');
      await this.sleep(delay);
    }
  }

  /** Logged when it changes; kept for status until the stream works again. */
  private noteProblem(problem: string): void {
    if (this.v.problem !== problem) this.log().error({ port: this.o.master.port, err: problem }, 'binlog archiver: the stream stopped');
    this.v.problem = problem;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  /** One stream: where to start, the child, the poll loop until the child exits. */
  private async session(): Promise<void> {
    const { master, repo } = this.o;
    const conn = await connect(master, { connectTimeoutMs: 10_000, queryTimeoutMs: 30_000 });
    let files: MasterFile[];
    let serverId: number;
    let empty: boolean;
    try {
      empty = (await userSchemas(conn)).length === 0;
      serverId = (await binlogRole(conn)).serverId;
      files = [];
      for (const name of await listBinaryLogs(conn)) files.push({ name, start: stripBrackets(await binlogStartGtid(conn, name)) });
    } finally {
      await conn.close();
    }
    // As a backup does: a repository that cannot be used (a posix mount point missing) is never created by a write.
    await repo.store.check();
    this.checkedAt = Date.now();
    const archive = await readShardArchive(repo, master.shard);
    // An empty instance joining a shard whose archive another server wrote is a restore's target
    // before its restore: its own few writes are not that shard's history (they would sit in its
    // archive beside the real files, numbered from the start). Streamed once it holds data.
    const others = archive.files.find((f) => f.host !== master.host || f.port !== master.port);
    if (empty && others)
      throw new NotYet(
        `it holds no schema but the system ones while shard ${master.shard}'s archive holds ${others.host}:${others.port}'s binlogs (a restore's target before its restore?)`,
      );
    this.v.waiting = undefined;
    for (const p of archive.problems)
      this.log().warn({ port: master.port, problem: p }, 'binlog archiver: an index of the archive cannot be read');
    const choice = chooseStart(archive.files, { host: master.host, port: master.port, serverId }, files);
    this.v.archived = mergeGtidPos(this.v.archived, archiveReach(archive.files).newest);
    if (choice.gap !== undefined && choice.gap !== this.v.gap) {
      this.log().error({ port: master.port, gap: choice.gap }, 'binlog archiver: a hole in the archive');
      this.v.gap = choice.gap;
    }
    this.log().info(
      { port: master.port, shard: master.shard, file: choice.file, resumeAt: choice.resume?.at ?? 0, why: choice.why },
      'binlog archiver: streaming',
    );
    if (this.stopped) return;

    const dir = this.o.spoolDir;
    await this.clearSpool(dir);
    const cnf = join(dir, 'client.cnf');
    writeFileSync(cnf, `[client]\npassword=${JSON.stringify(master.password)}\n`, { mode: 0o600 });
    const argv = [
      this.o.binlogTool ?? 'mariadb-binlog',
      `--defaults-file=${cnf}`,
      '--read-from-remote-server',
      '--raw',
      '--stop-never',
      `--stop-never-slave-server-id=${this.o.serverId}`,
      `--result-file=${dir}/`,
      `--host=${master.host}`,
      `--port=${master.port}`,
      `--user=${master.user}`,
      choice.file,
    ];
    const child = spawnArgv(argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    if (child.pid !== undefined) writeFileSync(join(dir, 'child.pid'), `${child.pid}\n`);
    let exited: { code: number | null; signal: NodeJS.Signals | null; error?: Error } | undefined;
    const exit = waitForExit(child).then((r) => {
      exited = r;
      this.wake?.();
    });

    // The stream's position: a file already archived in part is read again from its start and
    // its stored bytes are checked against the index (length and GTID state), not stored again.
    let file = choice.file;
    let index: FileIndex = choice.resume ? indexOf(choice.resume.index) : newIndex(master, serverId, file);
    let skip = choice.resume && choice.resume.at > 0 ? { at: choice.resume.at, state: choice.resume.state } : undefined;
    let scanner = new BinlogScanner();
    let offset = 0;
    this.stream = { file, scanner, pendingSeenMs: undefined };
    this.v.file = file;
    try {
      for (;;) {
        const finished = exited !== undefined;
        // Read what the child wrote since the last look.
        const path = join(dir, file);
        for (;;) {
          const chunk = readFrom(path, offset, READ_CHUNK);
          if (chunk.length === 0) break;
          // The child delivers: whatever stopped the stream before is over.
          if (!skip) this.v.problem = undefined;
          if (skip && offset < skip.at) {
            const upTo = Math.min(chunk.length, skip.at - offset);
            scanner.push(chunk.subarray(0, upTo));
            offset += upTo;
            if (offset === skip.at) {
              checkResume(scanner, skip, file);
              scanner.takeRange();
              skip = undefined;
              this.v.problem = undefined;
            }
            if (upTo < chunk.length) {
              scanner.push(chunk.subarray(upTo));
              offset += chunk.length - upTo;
            }
          } else {
            scanner.push(chunk);
            offset += chunk.length;
          }
          if (chunk.length < READ_CHUNK) break;
        }
        if (!skip) {
          const pending = scanner.peekRange();
          if (pending.to > pending.from && this.stream.pendingSeenMs === undefined) this.stream.pendingSeenMs = Date.now();
          // Store what is due (all of it when the file is closed).
          const committed = scanner.peekCommitted();
          const closed = scanner.state.closed && committed.to === scanner.state.end;
          const oldestMs = Math.min(
            this.stream.pendingSeenMs ?? Date.now(),
            committed.firstTime > 0 ? committed.firstTime * 1000 : Date.now(),
          );
          if (
            scanner.state.fileStart !== undefined &&
            shouldCut({ bytes: committed.to - committed.from, oldestMs, closed }, Date.now(), this.cutAgeMs)
          ) {
            if (Date.now() - this.checkedAt > STORE_CHECK_MS) {
              await repo.store.check();
              this.checkedAt = Date.now();
            }
            const bytes = readRange(path, committed.from, committed.to);
            index = await storeSegment(repo, { ...index, fileStart: scanner.state.fileStart }, bytes, committed, closed);
            scanner.takeCommitted();
            this.v.archived = mergeGtidPos(this.v.archived, committed.endGtid);
            if (committed.lastTime > 0) this.lastArchivedEventMs = committed.lastTime * 1000 + 999;
            this.v.archivedBytes += bytes.length;
            this.v.problem = undefined;
            const rest = scanner.peekRange();
            this.stream.pendingSeenMs = rest.to > rest.from ? Date.now() : undefined;
          }
          // A closed file fully stored leaves the spool; the child has opened the next one.
          if (scanner.state.closed && index.closed && scanner.state.nextFile !== undefined) {
            unlinkSync(path);
            file = scanner.state.nextFile;
            index = newIndex(master, serverId, file);
            scanner = new BinlogScanner();
            offset = 0;
            this.stream = { file, scanner, pendingSeenMs: undefined };
            this.v.file = file;
            continue;
          }
        }
        if (finished || this.stopped) break;
        await Promise.race([this.sleep(POLL_MS), exit]);
      }
    } finally {
      this.stream = undefined;
      if (exited === undefined) child.kill('SIGTERM');
      await exit;
      this.child = undefined;
      rmSync(cnf, { force: true });
    }
    if (!this.stopped) {
      const how = exited?.error ? exited.error.message : `exited ${exited?.code ?? exited?.signal}`;
      throw new Error(`mariadb-binlog ${how}: ${stderr.trim() || '(no message)'}`);
    }
  }

  /** An empty spool for a new stream: a child a killed daemon left behind goes first. */
  private async clearSpool(dir: string): Promise<void> {
    try {
      const pid = Number(readFileSync(join(dir, 'child.pid'), 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && (await killStray(pid, `--result-file=${dir}/`)))
        this.log().warn({ port: this.o.master.port, pid }, 'binlog archiver: killed the stream a previous daemon left running');
    } catch {
      // no pid file: nothing left behind
    }
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Asks the master for its position (every few seconds): the lag, and whether its purge policy endangers the archive. */
  async checkLag(): Promise<void> {
    if (this.stopped) return;
    try {
      if (this.lagConn === undefined || this.lagConn.broken) {
        await this.lagConn?.close().catch(() => {});
        this.lagConn = undefined;
        this.lagConn = await connect(this.o.master, { connectTimeoutMs: 5000, queryTimeoutMs: 10_000 });
      }
      const { pos, expireS } = await binlogPosition(this.lagConn);
      const now = Date.now();
      if (pos === '' || covers(parseGtidPos(this.v.archived), parseGtidPos(pos))) this.caughtUpAt = now;
      const s = this.stream;
      const pending = s?.scanner.peekRange();
      const oldestPendingMs =
        pending && pending.to > pending.from
          ? Math.min(s?.pendingSeenMs ?? now, pending.firstTime > 0 ? pending.firstTime * 1000 : now)
          : undefined;
      this.v.lagS = archiveLagSeconds({
        archived: this.v.archived,
        masterPos: pos,
        oldestPendingMs,
        caughtUpAtMs: this.caughtUpAt,
        lastArchivedEventMs: this.lastArchivedEventMs,
        startedAtMs: this.startedAt,
        nowMs: now,
      });
      if (expireS > 0 && s) {
        const logs = await listBinaryLogs(this.lagConn);
        const warning = purgeRisk({
          neededFile: s.file,
          oldestFile: logs[0] ?? '',
          fileOpenedMs: s.scanner.state.fileTime * 1000,
          policyS: expireS,
          nowMs: now,
        });
        if (warning !== undefined && !this.purgeWarned)
          this.log().warn({ port: this.o.master.port, warning }, 'binlog archiver: the master could purge a binlog not archived yet');
        this.purgeWarned ||= warning !== undefined;
        this.v.purgeWarning = warning;
      }
    } catch (err) {
      // The lag stays as last measured: the stream's own problem (if any) is what status shows.
      this.log().debug({ port: this.o.master.port, err: errorMessage(err) }, 'binlog archiver: cannot read the master position');
    }
  }
}

function newIndex(m: MasterSpec, serverId: number, file: string): FileIndex {
  return { format: ARCHIVE_FORMAT, shard: m.shard, host: m.host, port: m.port, serverId, file, fileStart: '', closed: false, segments: [] };
}

/** The stored index without what readShardArchive added (its folder, missing objects). */
function indexOf(a: FileIndex & { folder?: string; missing?: string[] }): FileIndex {
  const { folder: _f, missing: _m, ...index } = a;
  return index;
}

/** The bytes of the file already archived, read again, must end where its index says, at the same state. */
function checkResume(scanner: BinlogScanner, skip: { at: number; state: string }, file: string): void {
  const got = scanner.state;
  const same = covers(parseGtidPos(got.state), parseGtidPos(skip.state)) && covers(parseGtidPos(skip.state), parseGtidPos(got.state));
  if (got.end !== skip.at || !same)
    throw new Error(
      `${file}: the archive's index ends at byte ${skip.at} (state ${skip.state || 'empty'}) but the master's file has ` +
        `whole events to byte ${got.end} (state ${got.state || 'empty'}) there: not the same file; nothing stored`,
    );
}

function readFrom(path: string, offset: number, max: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return Buffer.alloc(0); // not written yet
  }
  try {
    const size = statSync(path).size;
    const n = Math.min(max, size - offset);
    if (n <= 0) return Buffer.alloc(0);
    const buf = Buffer.alloc(n);
    const got = readSync(fd, buf, 0, n, offset);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

function readRange(path: string, from: number, to: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(to - from);
    let at = 0;
    while (at < buf.length) {
      const n = readSync(fd, buf, at, buf.length - at, from + at);
      if (n === 0) throw new Error(`${path}: ends before byte ${to}`);
      at += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}
