// One throw-away mariadbd process: data directory set-up, start with readiness polling, clean stop.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { formatDuration } from '../format.js';

/** Debian installs these outside a non-root PATH; MARIADBD / MARIADB_INSTALL_DB override. */
const MARIADBD = process.env.MARIADBD ?? firstExisting('/usr/sbin/mariadbd', 'mariadbd');
const INSTALL_DB = process.env.MARIADB_INSTALL_DB ?? firstExisting('/usr/bin/mariadb-install-db', 'mariadb-install-db');

/** Small InnoDB sizes keep start-up and the datadir copies fast; used for install and start alike. */
const INNODB_ARGS = ['--innodb-buffer-pool-size=16M', '--innodb-log-file-size=8M'];

const START_TIMEOUT_MS = 90_000; // generous: a loaded 2-core CI machine starts several at once
const STOP_TIMEOUT_MS = 60_000;
const POLL_MS = 50;

function firstExisting(path: string, fallback: string): string {
  return existsSync(path) ? path : fallback;
}

/**
 * Creates a fresh data directory. `tmpdir` must be private to the caller: parallel
 * mariadb-install-db runs sharing /tmp were seen to fail on clashing temporary table files.
 */
export async function installDatadir(datadir: string, tmpdir: string): Promise<void> {
  await mkdir(tmpdir, { recursive: true });
  const args = [
    '--no-defaults',
    `--datadir=${datadir}`,
    `--tmpdir=${tmpdir}`,
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
    '--user=root',
    ...INNODB_ARGS,
  ];
  const { code, output } = await run(INSTALL_DB, args);
  if (code !== 0) throw new Error(`mariadb-install-db failed (exit ${code}):\n${output.slice(-4000)}`);
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

export class PortInUseError extends Error {
  constructor(readonly port: number) {
    super(`port ${port} is already in use`);
  }
}

export interface ServerSpec {
  /** Directory of this server: data/, tmp/, socket, logs, pid files. */
  dir: string;
  /** Address to bind (the instance's host); default 127.0.0.1. */
  host?: string;
  port: number;
  serverId: number;
  /** Appended to mariadbd's arguments (a restore test's throw-away instance: --skip-networking …). */
  extraArgs?: string[];
  /** A data directory elsewhere (a restored instance's own); default `dir`/data. */
  datadir?: string;
}

export class MariadbServer {
  readonly datadir: string;
  readonly socket: string;
  readonly errorLog: string;
  /** Written by the harness (not mariadbd) as soon as the process exists; read by the watchdog. */
  readonly harnessPidFile: string;
  port: number;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private disposed = false;

  constructor(private readonly spec: ServerSpec) {
    this.datadir = spec.datadir ?? join(spec.dir, 'data');
    this.socket = join(spec.dir, 'mysql.sock');
    this.errorLog = join(spec.dir, 'error.log');
    this.harnessPidFile = join(spec.dir, 'harness.pid');
    this.port = spec.port;
  }

  /** The mariadbd process id while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts mariadbd and resolves once root can connect over the socket. */
  async start(): Promise<void> {
    if (this.child) return;
    await mkdir(join(this.spec.dir, 'tmp'), { recursive: true });
    const logOffset = await fileSize(this.errorLog);
    // A teardown may have run while this start was waiting above: never spawn after it.
    if (this.disposed) throw new Error(`mariadbd in ${this.spec.dir}: not started, the cluster is closing`);
    const child = spawn(MARIADBD, this.args(), { stdio: 'ignore' });
    this.track(child);
    try {
      await this.waitReady(child);
    } catch (err) {
      this.kill();
      await this.exited;
      const log = await readFrom(this.errorLog, logOffset);
      if (/Address already in use|Do you already have another (mysqld|mariadbd) server running/.test(log)) {
        throw new PortInUseError(this.port);
      }
      throw new Error(`mariadbd in ${this.spec.dir} did not start: ${(err as Error).message}\n${log.slice(-3000)}`);
    }
  }

  /** Clean shutdown (SIGTERM, as an init system would), falling back to SIGKILL. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    const timer = new AbortController(); // a pending timer would keep the test process alive
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      delay(STOP_TIMEOUT_MS, true, { signal: timer.signal }).catch(() => false),
    ]);
    timer.abort();
    if (timedOut) this.kill();
    await this.exited;
  }

  /** Immediate SIGKILL. */
  kill(): void {
    this.child?.kill('SIGKILL');
  }

  /** For tearing down (the data directory is deleted next): SIGKILL now, and refuse later starts. */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.kill();
    await this.exited;
  }

  private args(): string[] {
    const { dir, serverId } = this.spec;
    return [
      '--no-defaults',
      '--user=root',
      `--datadir=${this.datadir}`,
      `--tmpdir=${join(dir, 'tmp')}`,
      `--port=${this.port}`,
      `--socket=${this.socket}`,
      `--bind-address=${this.spec.host ?? '127.0.0.1'}`,
      `--server-id=${serverId}`,
      '--log-bin=mysql-bin',
      '--sql-mode=',
      ...INNODB_ARGS,
      '--performance-schema=0',
      '--skip-name-resolve',
      `--pid-file=${join(dir, 'mariadbd.pid')}`,
      `--log-error=${this.errorLog}`,
      ...(this.spec.extraArgs ?? []),
    ];
  }

  private track(child: ChildProcess): void {
    this.child = child;
    const pidFile = this.harnessPidFile;
    // Synchronously, so the watchdog knows the process even if this one dies right now.
    if (child.pid !== undefined) writeFileSync(pidFile, String(child.pid));
    this.exited = new Promise((resolve) => {
      const done = () => {
        if (this.child === child) this.child = undefined;
        void rm(pidFile, { force: true }).finally(resolve);
      };
      child.once('exit', done);
      child.once('error', done); // spawn failure (e.g. binary missing): no 'exit' follows
    });
  }

  private async waitReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let lastError = 'not polled yet';
    while (Date.now() < deadline) {
      if (this.child !== child) throw new Error(`mariadbd exited during start-up (last probe: ${lastError})`);
      try {
        const conn = await mysql.createConnection({ socketPath: this.socket, user: 'root', connectTimeout: 5_000 });
        await conn.end();
        return;
      } catch (err) {
        lastError = (err as Error).message;
      }
      await delay(POLL_MS);
    }
    throw new Error(`mariadbd not ready after ${formatDuration(START_TIMEOUT_MS)} (last probe: ${lastError})`);
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function readFrom(path: string, offset: number): Promise<string> {
  try {
    const fh = await open(path, 'r');
    try {
      const size = (await fh.stat()).size;
      const buf = Buffer.alloc(Math.max(0, size - offset));
      await fh.read(buf, 0, buf.length, offset);
      return buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}
