// Health that matches reality: which errors mean "the agent cannot work with this instance" (not
// reached, login refused) and which stay warnings, and how /healthz, host `status` and its exit code
// follow from them, paused hosts and clusters excepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, wrapError } from '../../src/db/connect.js';
import { KeptConnections } from '../../src/db/connections.js';
import { describeUnreachable, unreachableOf } from '../../src/db/reachability.js';
import { InstanceError } from '../../src/errors.js';
import { clusterPauseKnown, instancesDown } from '../../src/state/instances-down.js';
import { healthOf } from '../../src/daemon/health.js';
import { renderStatusText, statusView } from '../../src/cli/render/status-view.js';
import { statusExitCode, STATUS_NOT_RUNNING } from '../../src/cli/commands/status.js';
import type { InstanceConfig } from '../../src/config/instance.js';
import type { InstanceReport } from '../../src/check/check.js';
import type { DaemonStatus } from '../../src/state/daemon-status.js';
import { freePort } from '../support/daemon.js';

/** A server error as mysql2 hands it over (code, errno, sqlMessage), wrapped as connect() wraps it. */
const serverError = (code: string, errno: number, message: string, fatal = false): InstanceError => {
  const e = Object.assign(new Error(message), { code, errno, sqlMessage: message, sqlState: 'HY000', fatal });
  return wrapError('127.0.0.1:3306', e);
};

test('cannot be reached: a port nobody listens on (a real connection attempt), also while backing off', async () => {
  const port = await freePort();
  const ep = { host: '127.0.0.1', port, user: 'u', password: 'p' };
  const err = await connect(ep).then(
    () => assert.fail('connected'),
    (e: unknown) => e,
  );
  assert.deepEqual(unreachableOf(err), { kind: 'unreachable', code: 'ECONNREFUSED' });
  const kept = new KeptConnections({ connect: { connectTimeoutMs: 2000 }, reconnect: { firstMs: 60_000, capMs: 60_000 } });
  await assert.rejects(kept.get(ep));
  // The second get() does not knock again (back-off): its error must still say why.
  const again = await kept.get(ep).then(
    () => assert.fail('connected'),
    (e: unknown) => e,
  );
  assert.match((again as Error).message, /next connection attempt/);
  assert.deepEqual(unreachableOf(again), { kind: 'unreachable', code: 'ECONNREFUSED' });
  await kept.close();
});

test('which errors count: unreachable and refused logins do, refused statements do not', () => {
  const cases: [unknown, string | undefined][] = [
    [serverError('ER_ACCESS_DENIED_ERROR', 1045, "Access denied for user 'sb'@'localhost' (using password: YES)", true), 'login-refused'],
    [serverError('ER_HOST_NOT_PRIVILEGED', 1130, "Host 'x' is not allowed to connect"), 'login-refused'],
    [serverError('ER_HOST_IS_BLOCKED', 1129, 'Host blocked'), 'login-refused'],
    // MariaDB's own number for a locked account (mysql2 names errnos after MySQL)
    [serverError('ER_UNKNOWN', 4151, 'Access denied, this account is locked'), 'login-refused'],
    [serverError('ER_CON_COUNT_ERROR', 1040, 'Too many connections'), 'unreachable'],
    [serverError('ER_SERVER_SHUTDOWN', 1053, 'Server shutdown in progress'), 'unreachable'],
    [wrapError('h:1', Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' })), 'unreachable'],
    [wrapError('h:1', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })), 'unreachable'],
    [wrapError('h:1', Object.assign(new Error('connect EHOSTUNREACH'), { code: 'EHOSTUNREACH' })), 'unreachable'],
    [wrapError('h:1', Object.assign(new Error('Connection lost'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true })), 'unreachable'],
    [wrapError('h:1', Object.assign(new Error('Query inactivity timeout'), { code: 'PROTOCOL_SEQUENCE_TIMEOUT' })), 'unreachable'],
    // A missing privilege on one table, a missing table, a deadlock, a killed statement: warnings.
    [
      serverError('ER_TABLEACCESS_DENIED_ERROR', 1142, "SELECT command denied to user 'sb'@'h' for table `infodba_schema`.`global_backup`"),
      undefined,
    ],
    [serverError('ER_DBACCESS_DENIED_ERROR', 1044, "Access denied for user 'sb'@'h' to database 'infodba_schema'"), undefined],
    [serverError('ER_SPECIFIC_ACCESS_DENIED_ERROR', 1227, 'Access denied; you need (at least one of) the SUPER privilege(s)'), undefined],
    [serverError('ER_NO_SUCH_TABLE', 1146, "Table 'infodba_schema.global_backup' doesn't exist"), undefined],
    [serverError('ER_LOCK_DEADLOCK', 1213, 'Deadlock found'), undefined],
    [serverError('ER_CONNECTION_KILLED', 1927, 'Connection was killed'), undefined],
    [new Error('no code at all'), undefined],
    ['a string', undefined],
    [undefined, undefined],
  ];
  for (const [err, kind] of cases) assert.equal(unreachableOf(err)?.kind, kind, String((err as Error | undefined)?.message ?? err));
  assert.equal(
    describeUnreachable({ kind: 'login-refused', code: 'ER_ACCESS_DENIED_ERROR' }),
    "refuses the agent's login (ER_ACCESS_DENIED_ERROR)",
  );
  assert.equal(describeUnreachable({ kind: 'unreachable', code: 'ECONNREFUSED' }), 'cannot be reached (ECONNREFUSED)');
});

const instance = (port: number, role = 'master'): InstanceConfig =>
  ({ file: `/etc/sb/dbbackup.${port}.ini`, host: '127.0.0.1', port, role, shardValue: 0 }) as unknown as InstanceConfig;
const report = (...instances: InstanceReport[]) => ({ instances });
const down: InstanceReport = {
  instance: instance(20000),
  tasks: [],
  error: '127.0.0.1:20000: connect ECONNREFUSED 127.0.0.1:20000',
  unreachable: { kind: 'unreachable', code: 'ECONNREFUSED' },
};
const denied: InstanceReport = {
  instance: instance(20001, 'slave'),
  tasks: [],
  error: '127.0.0.1:20001: missing privilege SELECT on infodba_schema.global_backup',
};
const fine: InstanceReport = { instance: instance(20002), tasks: [] };

test('instances down: only reachability counts, and nothing while paused', () => {
  const d = instancesDown(report(down, denied, fine), false);
  assert.deepEqual(d, [
    {
      port: 20000,
      host: '127.0.0.1',
      role: 'master',
      file: '/etc/sb/dbbackup.20000.ini',
      why: 'cannot be reached (ECONNREFUSED)',
      error: '127.0.0.1:20000: connect ECONNREFUSED 127.0.0.1:20000',
    },
  ]);
  assert.deepEqual(instancesDown(report(down), true), []);
  assert.deepEqual(instancesDown(undefined, false), []);
});

test('the cluster pause known: read this tick, or kept while no instance could be read and it lasts', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  const cp = { until: '2030-01-01T01:00:00.000Z', reason: 'maintenance', by: 'op', remainingS: 3600 };
  assert.equal(clusterPauseKnown(undefined, { instances: [fine], clusterPause: cp }, now), cp);
  assert.equal(clusterPauseKnown(cp, { instances: [down], clusterPause: undefined }, now), cp, 'unreadable: the last one known');
  assert.equal(clusterPauseKnown(cp, { instances: [down, fine], clusterPause: undefined }, now), undefined, 'read: it is over');
  assert.equal(
    clusterPauseKnown(cp, { instances: [down], clusterPause: undefined }, new Date('2030-01-01T02:00:00Z')),
    undefined,
    'expired',
  );
});

test('/healthz: 503 instance-down naming the instance and why; a warning stays 200', () => {
  const now = new Date(1_000_000);
  const base = {
    startedAt: new Date(0),
    lastError: undefined,
    intervalMs: 10_000,
    paused: false,
    journalBacklog: 0,
    lastTickOk: true,
    lastSuccessfulTickAt: new Date(now.getTime() - 5000),
  };
  const h = healthOf({ ...base, instanceErrors: 2, instancesDown: instancesDown(report(down, denied, fine), false) }, now);
  assert.equal(h.ok, false);
  assert.equal(h.body.status, 'instance-down');
  assert.match(
    String(h.body.summary),
    /^port 20000 \(master\) cannot be reached \(ECONNREFUSED\): 127\.0\.0\.1:20000: connect ECONNREFUSED/,
  );
  assert.equal((h.body.instancesDown as { port: number }[])[0]?.port, 20000);
  const warned = healthOf({ ...base, instanceErrors: 1, instancesDown: instancesDown(report(denied, fine), false) }, now);
  assert.deepEqual([warned.ok, warned.body.status, warned.body.instanceErrors], [true, 'ok', 1]);
  // A stuck loop is still said first.
  const stale = healthOf(
    { ...base, lastSuccessfulTickAt: new Date(0), instanceErrors: 1, instancesDown: instancesDown(report(down), false) },
    now,
  );
  assert.equal(stale.body.status, 'stale');
});

function snapshot(instancesDownList: DaemonStatus['instancesDown']): DaemonStatus {
  return {
    format: 1,
    pid: 42,
    startedAt: '2030-01-01T00:00:00.000Z',
    writtenAt: '2030-01-01T01:00:00.000Z',
    state: 'running',
    agentConfig: undefined,
    configDir: '/etc/sb',
    stateDir: '/var/lib/sb',
    tickIntervalMs: 10_000,
    metricsListen: 'off',
    lastTick: undefined,
    lastSuccessfulTickAt: undefined,
    lastError: undefined,
    schedule: { cron: undefined, spiderHost: false, nextRun: undefined, lastRun: undefined },
    instances: [],
    configErrors: [],
    journalBacklog: 0,
    ...(instancesDownList ? { instancesDown: instancesDownList } : {}),
  };
}

test('host status: exit 1 naming the instance while one is down; 3 wins when the daemon is down; a pause since counts', () => {
  const now = new Date('2030-01-01T01:00:01Z');
  const list = instancesDown(report(down, fine), false);
  const inputs = { now, stateDir: '/var/lib/sb', snapshotError: undefined, pause: undefined, pauseError: undefined };
  const v = statusView({ ...inputs, daemon: { pid: 42, alive: true }, snapshot: snapshot(list) });
  assert.equal(statusExitCode(v), 1);
  assert.match(renderStatusText(v, now), /DOWN: +port 20000 \(master\) cannot be reached \(ECONNREFUSED\): 127\.0\.0\.1:20000/);
  assert.equal(
    statusExitCode(statusView({ ...inputs, daemon: { pid: undefined, alive: false }, snapshot: snapshot(list) })),
    STATUS_NOT_RUNNING,
  );
  assert.equal(statusExitCode(statusView({ ...inputs, daemon: { pid: 42, alive: true }, snapshot: snapshot(undefined) })), 0);
  const pause = { until: '2030-01-01T02:00:00.000Z', reason: 'r', by: 'op', since: '2030-01-01T01:00:00.000Z' };
  const paused = statusView({ ...inputs, pause, daemon: { pid: 42, alive: true }, snapshot: snapshot(list) });
  assert.equal(statusExitCode(paused), 0);
  assert.doesNotMatch(renderStatusText(paused, now), /DOWN:/);
});
