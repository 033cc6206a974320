// `sandbox up` and `sandbox down`: start the keeper (keeper.ts) detached and follow its progress
// until the sandbox is ready; stop exactly what a sandbox's state file recorded, plus whatever runs
// under its base dir (sweep.ts), then remove the dir.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { OperationError, UsageError } from '../errors.js';
import { isAlive } from '../host/processes.js';
import { recordedPids, readState, sandboxPaths, writeState, type SandboxPaths, type SandboxState } from './layout.js';
import { TDBCTL_PORT_OFFSET } from './cluster.js';
import { portPlan, PORTS_ENV } from './ports.js';
import { killLeftovers, runsFrom } from './sweep.js';

const KEEPER = fileURLToPath(new URL('./keeper.js', import.meta.url));
const KEEPER_STOP_MS = 30_000;

export interface UpOptions {
  dir: string;
  /** `<min>-<max>`: the ports the servers may take (as SPIDERBACKUP_TEST_PORTS); default that variable or 20000-26899. */
  ports?: string;
  /** The daemons' tick and `--wait` interval. */
  tick?: string;
  /** Stop the sandbox when this process is gone (`sandbox run` without --keep). */
  owner?: number;
  /** A progress line from the keeper; `done` lines end a step. */
  onStep?: (text: string) => void;
}

/** Starts a sandbox in `dir` and resolves with its state once every agent ticks. */
export async function sandboxUp(opts: UpOptions): Promise<SandboxState> {
  if (opts.ports !== undefined) checkPorts(opts.ports);
  const paths = sandboxPaths(opts.dir);
  refuseOccupied(paths);
  mkdirSync(paths.base, { recursive: true });
  const log = openSync(paths.keeperLog, 'a');
  const args = [KEEPER, '--dir', paths.base, ...(opts.tick ? ['--tick', opts.tick] : [])];
  if (opts.owner !== undefined) args.push('--owner', String(opts.owner));
  const env = opts.ports === undefined ? process.env : { ...process.env, [PORTS_ENV]: opts.ports };
  // Its own session: a Ctrl-C in the terminal reaches `sandbox run`, which stops the keeper in order.
  const keeper = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log, 'pipe'], env });
  closeSync(log);
  if (keeper.pid === undefined) throw new OperationError(`could not start the sandbox keeper (${process.execPath})`);
  // Recorded at once, so a `down` (or a Ctrl-C) during start-up finds the keeper.
  writeState(paths, {
    base: paths.base,
    keeperPid: keeper.pid,
    startedAt: new Date().toISOString(),
    ready: false,
    instances: [],
    hosts: [],
    spiderAgentConfig: '',
  });

  let ready = false;
  let error: string | undefined;
  const lines = createInterface({ input: keeper.stdio[3] as NodeJS.ReadableStream });
  for await (const line of lines) {
    let msg: { step?: string; ready?: boolean; error?: string };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      continue;
    }
    if (msg.step !== undefined) opts.onStep?.(msg.step);
    if (msg.error !== undefined) error = msg.error;
    if (msg.ready) ready = true;
  }
  keeper.unref();
  if (!ready) {
    await waitGone([keeper.pid], KEEPER_STOP_MS);
    throw new OperationError(
      `the sandbox did not start: ${error ?? 'the keeper exited'}; see ${paths.keeperLog}\n${tail(paths.keeperLog)}`,
    );
  }
  const state = readState(paths);
  if (!state?.ready) throw new OperationError(`${paths.state}: the keeper reported ready but the state file does not say so`);
  return state;
}

/** A bad --ports is a usage error naming the flag, before anything starts. */
function checkPorts(ports: string): void {
  try {
    portPlan(ports, TDBCTL_PORT_OFFSET);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new UsageError(`--ports ${JSON.stringify(ports)}: ${err.message.replace(/^\S+: /, '')}`);
  }
}

/** A dir in use or left over from a crash is never reused: `down` first. */
function refuseOccupied(paths: SandboxPaths): void {
  if (!existsSync(paths.base)) return;
  const state = readState(paths);
  if (state && runsFrom(state.keeperPid, paths.base)) {
    throw new OperationError(
      `a sandbox already runs in ${paths.base} (keeper pid ${state.keeperPid}); stop it with: spiderbackup sandbox down --dir ${paths.base}`,
    );
  }
  if (state)
    throw new OperationError(`${paths.base} holds a stopped sandbox; clean it up with: spiderbackup sandbox down --dir ${paths.base}`);
  if (readdirSync(paths.base).length > 0) throw new OperationError(`${paths.base} exists and is not empty; choose another --dir`);
}

export interface DownResult {
  /** false when there was no sandbox in the dir. */
  found: boolean;
  /** Processes that had to be killed after the keeper's own shutdown. */
  killed: number;
}

/** Stops the sandbox in `dir` (keeper first, in order; then anything left) and removes the dir. */
export async function sandboxDown(dir: string): Promise<DownResult> {
  const paths = sandboxPaths(dir);
  if (!existsSync(paths.base)) return { found: false, killed: 0 };
  const state = readState(paths);
  // Only a dir a sandbox made is ever removed.
  if (!state) throw new OperationError(`${paths.base} holds no ${paths.state.split('/').pop()}: not a sandbox dir, left as it is`);
  if (runsFrom(state.keeperPid, paths.base)) {
    try {
      process.kill(state.keeperPid, 'SIGTERM');
    } catch {
      // ended meanwhile
    }
    await waitGone([state.keeperPid], KEEPER_STOP_MS);
  }
  const killed = await killLeftovers(paths.base, { recorded: recordedPids(state) });
  rmSync(paths.base, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  return { found: true, killed };
}

async function waitGone(pids: number[], ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (pids.some((p) => isAlive(p)) && Date.now() < deadline) await delay(50);
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
