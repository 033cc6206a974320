// A private OpenStack Swift with its S3 layer (s3api) for the repository tests and benches: a
// real object store that checks SigV4 signatures (a wrong secret gets 403), does multipart
// uploads (SLO) and lists incomplete ones — what a mock cannot vouch for. Debian 12's packages
// (scripts/install.sh); one proxy, one account, container and object server, and memcached
// (tempauth keeps its tokens there), on free ports of SPIDERBACKUP_TEST_PORTS, in a temp dir.
// One-replica rings on one device. A detached watchdog kills the servers and removes the dir
// should the test process die without close().
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { S3StoreConfig } from '../../src/config/repository.js';
import { TDBCTL_PORT_OFFSET } from '../../src/config/instance.js';
import { pickPort, portPlan, PORTS_ENV, type PortRange } from '../../src/sandbox/ports.js';

export const SWIFT_REGION = 'us-east-1';
/** tempauth's user `test:tester`; as an S3 access key id it is the account and user. */
const ACCESS_KEY_ID = 'test:tester';
const SECRET = 'testing';
const HOST = '127.0.0.1';
/** Bounded waits: a server that is not up by then will not come up. */
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 10_000;
const INSTALL_HINT =
  'install it with `bash scripts/install.sh` (Debian 12 packages swift swift-proxy swift-account swift-container swift-object memcached)';
const BINARIES = [
  'swift-proxy-server',
  'swift-account-server',
  'swift-container-server',
  'swift-object-server',
  'swift-ring-builder',
  'memcached',
];
const STORAGE_SERVERS = ['account', 'container', 'object'] as const;

export interface Swift {
  /** `http://127.0.0.1:<proxy port>` */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secret: string;
  /** A bucket created at start. */
  bucket: string;
  /** The temp dir with the configs, rings, data and each server's log. */
  dir: string;
  /** A `[repository] type = s3` store config for this Swift (the bucket and secret by default). */
  storeConfig(overrides?: Partial<S3StoreConfig>): S3StoreConfig;
  /** A client of its own (tests look behind the store: incomplete uploads and such). */
  client(): S3Client;
  /** The last lines of every server's log, for a failing test's message. */
  logs(): string;
  close(): Promise<void>;
}

export interface SwiftOptions {
  bucket?: string;
}

/** Starts a Swift and creates a bucket; a missing Swift fails with the install hint. */
export async function startSwift(opts: SwiftOptions = {}): Promise<Swift> {
  const missing = BINARIES.filter((b) => onPath(b) === undefined);
  if (missing.length > 0)
    throw new Error(
      `OpenStack Swift is needed for this test but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing: ${INSTALL_HINT}`,
    );
  const dir = mkdtempSync(join(tmpdir(), 'sb-swift-'));
  // The objects in memory when it can: Swift fsyncs every object, which costs seconds per
  // thousand small ones on a busy disk, and nothing here needs to outlive the test.
  const devices = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/sb-swift-') : join(dir, 'devices');
  const watchdog = startWatchdog(dir, devices);
  const children = new Map<string, ChildProcess>();
  const close = async () => {
    await stopAll(children);
    try {
      if (watchdog.pid !== undefined) process.kill(watchdog.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
    rmSync(devices, { recursive: true, force: true });
  };
  try {
    return await start(dir, devices, children, opts.bucket ?? 'spiderbackup-test', close);
  } catch (err) {
    const logs = logTails(dir);
    await close();
    throw new Error(`${(err as Error).message}${logs ? `\n${logs}` : ''}`, { cause: err });
  }
}

async function start(
  dir: string,
  devices: string,
  children: Map<string, ChildProcess>,
  bucket: string,
  close: () => Promise<void>,
): Promise<Swift> {
  const ranges = swiftPortRanges();
  const taken = new Set<number>();
  const port = async () => pickPort(ranges, taken, { avoid: [TDBCTL_PORT_OFFSET] });
  const ports = { proxy: await port(), account: await port(), container: await port(), object: await port(), memcached: await port() };
  const user = userInfo().username;
  mkdirSync(join(devices, 'd1'), { recursive: true });
  buildRings(dir, ports);
  for (const s of STORAGE_SERVERS) writeFileSync(join(dir, `${s}.conf`), storageConf(s, ports[s], dir, devices, user));
  writeFileSync(join(dir, 'proxy.conf'), proxyConf(ports.proxy, ports.memcached, dir, user));

  const run = (name: string, cmd: string, args: string[]) => {
    const log = openSync(join(dir, `${name}.log`), 'a');
    const child = spawn(cmd, args, { stdio: ['ignore', log, log] });
    closeSync(log);
    children.set(name, child);
    if (child.pid !== undefined) writeFileSync(join(dir, `${name}.pid`), String(child.pid));
    child.once('error', () => children.delete(name));
  };
  run('memcached', 'memcached', ['-u', user, '-l', HOST, '-p', String(ports.memcached), '-U', '0', '-m', '16']);
  // -v: log to stdout (here the server's log file) rather than syslog.
  for (const s of STORAGE_SERVERS) run(s, `swift-${s}-server`, [join(dir, `${s}.conf`), '-v']);
  run('proxy', 'swift-proxy-server', [join(dir, 'proxy.conf'), '-v']);

  const endpoint = `http://${HOST}:${ports.proxy}`;
  const storeConfig = (overrides: Partial<S3StoreConfig> = {}): S3StoreConfig => ({
    type: 's3',
    endpoint,
    bucket,
    region: SWIFT_REGION,
    accessKeyId: ACCESS_KEY_ID,
    secret: { inline: SECRET },
    forcePathStyle: true,
    caFile: undefined,
    ...overrides,
  });
  // As the S3 store does: the SDK's warning about its future Node versions is noise here.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const client = () =>
    new S3Client({
      endpoint,
      region: SWIFT_REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
    });
  await createBucketWhenUp(client(), bucket, children);
  return {
    endpoint,
    region: SWIFT_REGION,
    accessKeyId: ACCESS_KEY_ID,
    secret: SECRET,
    bucket,
    dir,
    storeConfig,
    client,
    logs: () => logTails(dir),
    close,
  };
}

/**
 * The cluster harness's data ports when the range is big enough for a cluster (so both can share
 * it), else the whole range: five ports need no more.
 */
function swiftPortRanges(): PortRange[] {
  const value = process.env[PORTS_ENV];
  try {
    return portPlan(value, TDBCTL_PORT_OFFSET).data;
  } catch (err) {
    const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(value ?? '');
    if (!m || Number(m[1]) < 1024 || Number(m[2]) > 65535 || Number(m[2]) - Number(m[1]) < 20) throw err;
    return [{ min: Number(m[1]), max: Number(m[2]) }];
  }
}

/** Polls with the bucket's creation itself (it needs the proxy, tempauth, memcached, the account and container servers). */
async function createBucketWhenUp(client: S3Client, bucket: string, children: Map<string, ChildProcess>): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last: unknown;
  try {
    for (;;) {
      const dead = [...children].find(([, c]) => c.exitCode !== null || c.signalCode !== null || c.pid === undefined);
      if (dead) throw new Error(`Swift's ${dead[0]} exited at start (${dead[1].exitCode ?? dead[1].signalCode ?? 'did not start'})`);
      try {
        await client.send(new CreateBucketCommand({ Bucket: bucket }));
        return;
      } catch (err) {
        last = err;
        const name = (err as { name?: string }).name;
        if (name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists') return;
      }
      if (Date.now() > deadline)
        throw new Error(`Swift did not answer within ${START_TIMEOUT_MS / 1000} s (last: ${(last as Error | undefined)?.message ?? last})`);
      await delay(100);
    }
  } finally {
    client.destroy();
  }
}

/** One Python process for the three rings (the CLI would take nine, at a Python start each). */
function buildRings(dir: string, ports: Record<(typeof STORAGE_SERVERS)[number], number>): void {
  const script = [
    'import sys',
    'from swift.common.ring import RingBuilder',
    'd = sys.argv[1]',
    'for name, port in zip(("account", "container", "object"), sys.argv[2:]):',
    // The equivalent of: swift-ring-builder <name>.builder create 8 1 1; add r1z1-127.0.0.1:<port>/d1 100; rebalance
    '    b = RingBuilder(8, 1, 1)',
    `    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "${HOST}", "port": int(port), "device": "d1", "weight": 100})`,
    '    b.rebalance()',
    '    b.get_ring().save("%s/%s.ring.gz" % (d, name))',
  ].join('\n');
  const r = spawnSync(swiftPython(), ['-c', script, dir, String(ports.account), String(ports.container), String(ports.object)], {
    encoding: 'utf8',
    timeout: START_TIMEOUT_MS,
  });
  if (r.status !== 0)
    throw new Error(
      `cannot build Swift's rings (python3 exited ${r.status ?? r.signal}): ${r.stderr.trim() || r.error?.message}: ${INSTALL_HINT}`,
    );
}

function storageConf(server: string, port: number, dir: string, devices: string, user: string): string {
  return `[DEFAULT]
bind_ip = ${HOST}
bind_port = ${port}
# one process, no forked workers: close() has one pid to kill
workers = 0
user = ${user}
swift_dir = ${dir}
devices = ${devices}
mount_check = false
log_name = ${server}

[pipeline:main]
pipeline = ${server}-server

[app:${server}-server]
use = egg:swift#${server}
`;
}

function proxyConf(port: number, memcached: number, dir: string, user: string): string {
  return `[DEFAULT]
bind_ip = ${HOST}
bind_port = ${port}
workers = 0
user = ${user}
swift_dir = ${dir}
log_name = proxy

[pipeline:main]
# s3api before tempauth (it turns a SigV4 request into one tempauth can check); slo for multipart
pipeline = catch_errors gatekeeper proxy-logging cache s3api tempauth slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
# The storage servers start beside the proxy: one still loading must not be shunned for a minute
# (the default after 10 errors), nor a slow answer on a busy machine taken for a dead server.
error_suppression_interval = 1
node_timeout = 30
conn_timeout = 5

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = ${HOST}:${memcached}

[filter:s3api]
use = egg:swift#s3api
location = ${SWIFT_REGION}

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = ${SECRET} .admin

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
`;
}

async function stopAll(children: Map<string, ChildProcess>): Promise<void> {
  const exits = [...children.values()].map((c) =>
    c.exitCode !== null || c.signalCode !== null || c.pid === undefined
      ? Promise.resolve()
      : new Promise<void>((r) => c.once('exit', () => r())),
  );
  // SIGKILL: the data goes with the dir right after.
  for (const c of children.values()) c.kill('SIGKILL');
  await Promise.race([Promise.all(exits), delay(STOP_TIMEOUT_MS)]);
  children.clear();
}

function logTails(dir: string): string {
  const out: string[] = [];
  for (const name of ['proxy', ...STORAGE_SERVERS, 'memcached']) {
    const f = join(dir, `${name}.log`);
    if (!existsSync(f)) continue;
    const lines = readFileSync(f, 'utf8').trimEnd().split('\n').slice(-8);
    if (lines.join('') !== '') out.push(`--- ${name}.log\n${lines.join('\n')}`);
  }
  return out.join('\n');
}

function onPath(cmd: string): string | undefined {
  for (const d of (process.env['PATH'] ?? '').split(delimiter)) if (d !== '' && existsSync(join(d, cmd))) return join(d, cmd);
  return undefined;
}

/** The Python Swift's own scripts run with (their #! line): the first python3 on PATH may be another one without Swift. */
function swiftPython(): string {
  const script = onPath('swift-ring-builder');
  const shebang = script === undefined ? undefined : /^#!\s*(\S+)/.exec(readFileSync(script, 'utf8').split('\n', 1)[0] ?? '');
  return shebang?.[1] ?? 'python3';
}

/** A detached shell that outlives this process: once it is gone it SIGKILLs the servers whose pid files are there and deletes the dir. */
function startWatchdog(dir: string, devices: string): ChildProcess {
  const script = [
    // alive = exists and is not a zombie (a killed process stays one until its parent reaps it)
    'alive() { s=$(sed "s/.*) //" "/proc/$1/stat" 2>/dev/null | cut -c1); [ -n "$s" ] && [ "$s" != Z ]; }',
    'while alive "$1"; do sleep 1; done',
    'for f in "$2"/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done',
    'rm -rf "$2" "$3"',
  ].join('\n');
  const child = spawn('sh', ['-c', script, 'sb-swift-watchdog', String(process.pid), dir, devices], { detached: true, stdio: 'ignore' });
  child.unref();
  return child;
}
