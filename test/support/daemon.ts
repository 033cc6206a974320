// The real daemon as a child process of a test: its JSON log lines (stdout) collected, its exit
// awaited on 'exit' — not 'close': detached supervisors inherit its stdout and keep the pipe open
// after the daemon itself is gone.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { TickRecord } from '../../src/state/daemon-status.js';
import { CLI, waitFor, type Workspace } from './workspace.js';

export interface LogLine {
  level: number;
  msg: string;
  pid: number;
  [k: string]: unknown;
}

export class DaemonProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  /** `command`: how to start it; default the built CLI on the test's own node. */
  constructor(
    readonly ws: Workspace,
    command: readonly string[] = [process.execPath, CLI, 'daemon', '--agent-config', ws.agentIni],
  ) {
    const [file, ...args] = command as [string, ...string[]];
    this.child = spawn(file, args, {
      cwd: ws.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    this.child.stdout?.on('data', (d: Buffer) => {
      const parts = (partial + d.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const p of parts) {
        try {
          this.lines.push(JSON.parse(p) as LogLine);
        } catch {
          this.lines.push({ level: 0, msg: p, pid: 0 });
        }
      }
    });
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** The first log line with this message (or matching it, or for which it is true). */
  log(msg: string | RegExp | ((l: LogLine) => boolean)): LogLine | undefined {
    return this.lines.find((l) => (typeof msg === 'string' ? l.msg === msg : typeof msg === 'function' ? msg(l) : msg.test(l.msg)));
  }

  waitLog(msg: string | RegExp | ((l: LogLine) => boolean), timeoutMs?: number): Promise<LogLine> {
    return waitFor(`log line ${String(msg)}`, () => this.log(msg), timeoutMs);
  }

  /** Waits until this daemon has finished `n` more ticks (counted in its status.json). */
  async ticks(n: number): Promise<void> {
    const seen = new Set<string>();
    const first = tickOf(this.ws, this.pid);
    if (first) seen.add(first);
    await waitFor(
      `${n} ticks of daemon ${this.pid}`,
      () => {
        const t = tickOf(this.ws, this.pid);
        if (t) seen.add(t);
        return seen.size >= n + (first ? 1 : 0);
      },
      60_000,
    );
  }

  /** The last tick this daemon recorded in status.json; undefined before its first. */
  lastTick(): TickRecord | undefined {
    return lastTickOf(this.ws, this.pid);
  }

  /**
   * Waits for the next `n` ticks to end and returns them, oldest first. status.json is polled
   * every `pollMs`, so no tick is missed while the tick interval is well above it; each wait
   * returns within `pollMs` of the tick's end, long before the next tick begins.
   */
  async nextTicks(n: number, opts: { pollMs?: number; timeoutMs?: number } = {}): Promise<TickRecord[]> {
    const pollMs = opts.pollMs ?? 10;
    const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
    const seen: TickRecord[] = [];
    let last = this.lastTick()?.startedAt;
    while (seen.length < n) {
      if (this.child.exitCode !== null) throw new Error(`daemon exited with ${this.child.exitCode}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} ticks of daemon ${this.pid} (saw ${seen.length})`);
      const t = this.lastTick();
      if (t && t.startedAt !== last) {
        seen.push(t);
        last = t.startedAt;
      } else {
        await new Promise((r) => setTimeout(r, pollMs));
      }
    }
    return seen;
  }

  async ready(): Promise<void> {
    await waitFor(
      `daemon ${this.pid} to start ticking`,
      () => tickOf(this.ws, this.pid) !== undefined || this.child.exitCode !== null,
      60_000,
    );
    if (this.child.exitCode !== null) throw new Error(`daemon exited with ${this.child.exitCode}: ${this.stderr}`);
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  /** Stops it if it still runs and lets go of its pipes (supervisors may still hold them). */
  async dispose(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
  }
}

function tickOf(ws: Workspace, pid: number): string | undefined {
  return lastTickOf(ws, pid)?.startedAt;
}

function lastTickOf(ws: Workspace, pid: number): TickRecord | undefined {
  try {
    const s = JSON.parse(readFileSync(join(ws.stateDir, 'status.json'), 'utf8')) as { pid: number; lastTick?: TickRecord };
    return s.pid === pid ? s.lastTick : undefined;
  } catch {
    return undefined;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
