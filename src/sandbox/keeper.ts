#!/usr/bin/env node
// The sandbox keeper: the detached process that owns a running sandbox. It starts the cluster
// (the mariadbd servers are its children, the tdbctl stand-in runs inside it), writes the sample
// data and one agent config per simulated host, starts one agent daemon per host, records all of
// it in <dir>/sandbox.json and then waits. On SIGTERM/SIGINT — or when --owner (the `sandbox run`
// that started it) is gone — it stops the daemons, whatever backups they left running, and the
// cluster. Progress goes to fd 3 as JSON lines ({"step"} … {"ready"} or {"error"}) for `sandbox up`.
//   node keeper.js --dir DIR [--owner PID] [--tick 500ms]
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { errorMessage } from '../errors.js';
import { formatDuration } from '../format.js';
import { isAlive } from '../host/processes.js';
import { startCluster, type Cluster, type Instance } from './cluster.js';
import { demoAgentConfig } from './demo-config.js';
import { hostPaths, sandboxPaths, writeState, type SandboxHost, type SandboxPaths, type SandboxState } from './layout.js';
import { loadSampleData } from './sample-data.js';
import { killLeftovers } from './sweep.js';

const CLI = fileURLToPath(new URL('../bin/cli.js', import.meta.url));
const DAEMON_READY_MS = 60_000;
const DAEMON_STOP_MS = 15_000;
const OWNER_POLL_MS = 500;

const { values } = parseArgs({
  options: { dir: { type: 'string' }, owner: { type: 'string' }, tick: { type: 'string', default: '500ms' } },
  strict: true,
});
if (values.dir === undefined) {
  process.stderr.write('usage: keeper --dir DIR [--owner PID] [--tick DURATION]\n');
  process.exit(2);
}
const paths = sandboxPaths(values.dir);
const owner = values.owner === undefined ? undefined : Number(values.owner);
const progress = openProgress();

let cluster: Cluster | undefined;
const daemons: ChildProcess[] = [];
let stopping: Promise<void> | undefined;

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void stop(`received ${sig}`, false));

if (owner !== undefined) void watchOwner(owner);
try {
  await up();
  progress({ ready: true });
  progress.close();
} catch (err) {
  progress({ error: errorMessage(err) });
  process.stderr.write(`keeper: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  await stop('start-up failed', false);
}

async function up(): Promise<void> {
  const started = Date.now();
  progress({ step: 'starting 2 shard masters, a replica of each, a spider node and the tdbctl stand-in (mariadbd from the system)' });
  cluster = await startCluster({ shards: 2, slaves: [0, 1], tdbctl: true, hosts: 'distinct', dir: paths.cluster });
  progress({ step: `cluster up in ${formatDuration(Date.now() - started)}`, done: true });
  if (stopping) return;

  const t = Date.now();
  const rows = await loadSampleData(cluster);
  progress({
    step: `sample data: ${rows} rows in demo.orders, spread over the shards by the spider node (${formatDuration(Date.now() - t)})`,
    done: true,
  });

  const hosts = writeHosts(cluster, paths);
  writeState(paths, stateOf(cluster, hosts, false));
  const t2 = Date.now();
  progress({ step: `starting ${hosts.length} agent daemons, one per host (tick ${values.tick})` });
  for (const h of hosts) daemons.push(startDaemon(h));
  hosts.forEach((h, i) => (h.daemonPid = daemons[i]?.pid));
  writeState(paths, stateOf(cluster, hosts, false));
  await Promise.all(hosts.map((h) => daemonReady(h)));
  progress({ step: `agents ticking (${formatDuration(Date.now() - t2)})`, done: true });
  writeState(paths, stateOf(cluster, hosts, true));
}

/** One simulated host per address: its instance's ini in its own conf.d and its own agent config. */
function writeHosts(c: Cluster, p: SandboxPaths): SandboxHost[] {
  const served = [...c.masters, ...c.slaves, c.spider];
  return served.map((inst) => {
    const h = hostPaths(p, inst.host);
    mkdirSync(h.confDir, { recursive: true });
    mkdirSync(h.backupDir, { recursive: true });
    mkdirSync(h.repository, { recursive: true });
    c.writeInstanceIni(h.confDir, inst, { BackupDir: h.backupDir });
    writeFileSync(h.agentConfig, demoAgentConfig(h, values.tick as string));
    return { address: inst.host, agentConfig: h.agentConfig, log: h.log, daemonPid: undefined };
  });
}

function startDaemon(h: SandboxHost): ChildProcess {
  const log = createWriteStream(`${h.log}.stderr`);
  const child = spawn(process.execPath, [CLI, 'daemon', '--agent-config', h.agentConfig], {
    cwd: hostPaths(paths, h.address).dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.pipe(log);
  return child;
}

/** Ready once its status.json records a first tick of its own. */
async function daemonReady(h: SandboxHost): Promise<void> {
  const status = `${hostPaths(paths, h.address).stateDir}/status.json`;
  const deadline = Date.now() + DAEMON_READY_MS;
  while (Date.now() < deadline) {
    if (h.daemonPid === undefined || !isAlive(h.daemonPid)) {
      throw new Error(`the agent daemon of ${h.address} exited; see ${h.log} and ${h.log}.stderr`);
    }
    try {
      const s = JSON.parse(readFileSync(status, 'utf8')) as { pid?: number; lastTick?: unknown };
      if (s.pid === h.daemonPid && s.lastTick) return;
    } catch {
      // not written yet
    }
    await delay(100);
  }
  throw new Error(`the agent daemon of ${h.address} did not tick within ${formatDuration(DAEMON_READY_MS)}; see ${h.log}`);
}

function stateOf(c: Cluster, hosts: SandboxHost[], ready: boolean): SandboxState {
  const inst = (i: Instance) => ({
    name: i.name,
    role: i.role,
    host: i.host,
    port: i.port,
    socket: i.socket,
    shardValue: i.shardValue,
    pid: c.pidOf(i),
  });
  return {
    base: paths.base,
    keeperPid: process.pid,
    startedAt: new Date().toISOString(),
    ready,
    instances: c.all().map(inst),
    hosts,
    spiderAgentConfig: hostPaths(paths, c.spider.host).agentConfig,
  };
}

async function watchOwner(pid: number): Promise<void> {
  while (!stopping) {
    if (!isAlive(pid)) return stop(`owner ${pid} is gone`, true);
    await delay(OWNER_POLL_MS);
  }
}

/** Daemons first (no new backup starts), then what they left running, then the servers. */
function stop(why: string, removeDir: boolean): Promise<void> {
  stopping ??= (async () => {
    process.stderr.write(`keeper: stopping: ${why}\n`);
    for (const d of daemons) d.kill('SIGTERM');
    await Promise.all(daemons.map((d) => exited(d, DAEMON_STOP_MS)));
    await killLeftovers(paths.base, { except: [process.pid] });
    await cluster?.close();
    if (removeDir) rmSync(paths.base, { recursive: true, force: true });
    process.exit(0);
  })();
  return stopping;
}

async function exited(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  const timer = new AbortController();
  const late = await Promise.race([done.then(() => false), delay(ms, true, { signal: timer.signal }).catch(() => false)]);
  timer.abort();
  if (late) {
    child.kill('SIGKILL');
    await done;
  }
}

type Progress = ((msg: Record<string, unknown>) => void) & { close(): void };

/** fd 3 when `sandbox up` gave one; a no-op otherwise (or once it is gone). */
function openProgress(): Progress {
  let open = true;
  const write = (msg: Record<string, unknown>) => {
    if (!open) return;
    try {
      writeFileSync(3, `${JSON.stringify(msg)}\n`);
    } catch {
      open = false;
    }
  };
  return Object.assign(write, {
    close() {
      if (!open) return;
      open = false;
      try {
        closeSync(3); // the reader sees the end of the stream
      } catch {
        // already closed
      }
    },
  });
}
