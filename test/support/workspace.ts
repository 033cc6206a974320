// A test's private working area: agent config, instance drop-ins, state dir, the fake backup's
// run records, and helpers to run the real CLI as a child process.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Behaviour } from './fake-backup.js';

const here = dirname(fileURLToPath(import.meta.url));
export const CLI = join(here, '../../src/bin/cli.js');
export const FAKE_BACKUP = join(here, 'fake-backup.js');

export interface Run {
  port: number;
  backupId: string;
  shardValue: string;
  config: string;
  kind: string;
  pid: number;
  grandchild?: number;
  /** Other runs of this workspace alive when this one started (must always be empty). */
  concurrent: number[];
  cwd: string;
  argv: string[];
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class Workspace {
  readonly dir: string;
  readonly confDir: string;
  readonly stateDir: string;
  readonly agentIni: string;
  /** This simulated host's own host lock (each workspace is one host). */
  readonly hostLock: string;
  /** Children of start() that have not exited yet; close() kills them. */
  private readonly children = new Set<ChildProcess>();

  constructor(agentExtra: Record<string, Record<string, string>> = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'sb-ws-'));
    this.confDir = join(this.dir, 'conf.d');
    this.stateDir = join(this.dir, 'state');
    mkdirSync(this.confDir);
    this.agentIni = join(this.dir, 'spiderbackup.ini');
    this.hostLock = join(this.dir, 'host', 'host.lock');
    this.writeAgentConfig(agentExtra);
  }

  writeAgentConfig(extra: Record<string, Record<string, string>> = {}): void {
    const fake = `${process.execPath} ${FAKE_BACKUP} --dir ${this.dir}`;
    const sections: Record<string, Record<string, string>> = {
      agent: { config_dir: this.confDir, state_dir: this.stateDir, host_lock: this.hostLock, tick_interval: '1s', ...extra.agent },
      backup: {
        install_dir: this.dir,
        remote_command: `${fake} --kind remote --config {config} --backup-id {backup_id} --shard-value {shard_value} --port {port}`,
        spider_command: `${fake} --kind spider --backup-id {backup_id} --port {port}`,
        kill_grace: '1s',
        ...extra.backup,
      },
      schedule: { wait_interval: '1s', ...extra.schedule },
      metrics: { listen: 'off', ...extra.metrics },
      log: { level: 'info', ...extra.log },
      // Never the host's own mysql-crond: a test gives its stand-in.
      migration: { mysql_crond: 'off', ...extra.migration },
    };
    // Any other section (e.g. [repository]) as given.
    for (const [name, kv] of Object.entries(extra)) if (!(name in sections)) sections[name] = kv;
    const text = Object.entries(sections)
      .map(
        ([name, kv]) =>
          `[${name}]\n${Object.entries(kv)
            .map(([k, v]) => `${k} = ${v}`)
            .join('\n')}\n`,
      )
      .join('\n');
    writeFileSync(this.agentIni, text);
  }

  behave(port: number, b: Behaviour): void {
    writeFileSync(join(this.dir, `behaviour.${port}.json`), JSON.stringify(b));
  }

  release(port: number): void {
    writeFileSync(join(this.dir, `release.${port}`), '');
  }

  /** Forgets runs, behaviours, releases and the journal between tests. */
  reset(): void {
    for (const f of readdirSync(this.dir)) {
      if (f === 'runs.jsonl' || f.startsWith('behaviour.') || f.startsWith('release.')) rmSync(join(this.dir, f));
    }
    rmSync(join(this.stateDir, 'journal'), { recursive: true, force: true });
  }

  runs(): Run[] {
    const f = join(this.dir, 'runs.jsonl');
    if (!existsSync(f)) return [];
    return readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Run);
  }

  /** Starts the real CLI with this workspace's agent config. */
  start(
    args: string[],
    opts: { cwd?: string } = {},
  ): { child: ChildProcess; result: Promise<CliResult>; stdout(): string; stderr(): string } {
    const child = spawn(process.execPath, [CLI, '--agent-config', this.agentIni, ...args], {
      cwd: opts.cwd ?? this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const result = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
    return { child, result, stdout: () => stdout, stderr: () => stderr };
  }

  cli(...args: string[]): Promise<CliResult> {
    return this.start(args).result;
  }

  /**
   * Removes the workspace. A CLI child still running (left by a failed test: a `schedule --wait`,
   * a `check --run` behind a blocked backup …) is killed first, its pipes closed: it would keep the
   * test file's process alive. Fake backups notice their directory is gone and exit.
   */
  close(): void {
    for (const child of this.children) {
      child.kill('SIGKILL');
      child.stdout?.destroy();
      child.stderr?.destroy();
    }
    this.children.clear();
    // A detached supervisor may still be writing its status, record or journal here: it holds the
    // host lock until it exits, so wait for the lock (bounded), then retry a non-empty dir anyway.
    if (existsSync(this.hostLock)) spawnSync('flock', ['--wait', '30', this.hostLock, 'true'], { stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}

/** Polls until fn returns a truthy value; fails with `what` after timeoutMs (generous: CI is slow). */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Zombie-aware, as the product's own check: an orphan nobody reaped has still ended. */
export { isAlive as pidAlive } from '../../src/host/processes.js';
