// The pure parts of the cluster view: agent state from presence, the cluster's members from
// mysql.servers, replication problems, and what `schedule --wait` says about a task.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentState, lostAfterMs } from '../../src/cluster/agent-state.js';
import { clusterMembers } from '../../src/cluster/members.js';
import { replicationProblem } from '../../src/cluster/replication-health.js';
import { judge, type Evidence } from '../../src/cluster/wait-judge.js';
import type { InstanceConfig } from '../../src/config/instance.js';
import type { PresenceRow } from '../../src/sql/presence.js';
import type { ServerRow } from '../../src/sql/servers.js';
import type { TaskRow } from '../../src/task/task.js';

test('agent state: none without presence, lost after max(3 of its own ticks, 30 s) (+1 s of timestamp resolution), lost wins over paused', () => {
  assert.equal(agentState(undefined), 'none');
  assert.equal(lostAfterMs(10_000), 31_000);
  assert.equal(agentState({ ageS: 31, tickIntervalMs: 10_000, paused: false }), 'alive');
  assert.equal(agentState({ ageS: 32, tickIntervalMs: 10_000, paused: false }), 'lost');
  assert.equal(agentState({ ageS: 2, tickIntervalMs: 1000, paused: true }), 'paused');
  assert.equal(agentState({ ageS: 32, tickIntervalMs: 1000, paused: true }), 'lost');
});

test('the lost rule has a floor of 30 s: a loaded host at a short tick is not called lost; long ticks keep 3 ticks', () => {
  // The demo's 500 ms tick: 3 ticks would be 1.5 s; a host late by 10 s under load is still alive.
  assert.equal(lostAfterMs(500), 31_000);
  assert.equal(lostAfterMs(1000), 31_000);
  assert.equal(agentState({ ageS: 10, tickIntervalMs: 500, paused: false }), 'alive');
  assert.equal(agentState({ ageS: 5, tickIntervalMs: 1000, paused: true }), 'paused');
  assert.equal(agentState({ ageS: 31, tickIntervalMs: 500, paused: false }), 'alive');
  assert.equal(agentState({ ageS: 32, tickIntervalMs: 500, paused: false }), 'lost');
  // Above 10 s the ticks decide, as before.
  assert.equal(lostAfterMs(60_000), 181_000);
  assert.equal(agentState({ ageS: 120, tickIntervalMs: 60_000, paused: false }), 'alive');
  assert.equal(agentState({ ageS: 182, tickIntervalMs: 60_000, paused: false }), 'lost');
});

const srv = (serverName: string, wrapper: string, host: string, port: number): ServerRow => ({
  serverName,
  wrapper,
  host,
  port,
  user: 'u',
  password: 'p',
});

test('cluster members: this spider node first with its own credentials, other spiders, masters and replicas by shard; no tdbctl', () => {
  const target = {
    spider: { host: '10.0.0.9', port: 25000, user: 'ini-user', password: 'ini-pw' } as InstanceConfig,
    tdbctl: { host: '10.0.0.9', port: 26000, user: 'u', password: 'p' },
    tdbctlFrom: 'the spider port + 1000',
  };
  const members = clusterMembers(
    [
      srv('SPT_SLAVE1', 'mysql_slave', '10.0.0.4', 20000),
      srv('SPT1', 'mysql', '10.0.0.2', 20000),
      srv('SPT0', 'mysql', '10.0.0.1', 20000),
      srv('SPT_SLAVE0', 'mysql_slave', '10.0.0.1', 20000), // listed as both: stays a master
      srv('SPIDER1', 'SPIDER', '10.0.0.8', 25000),
      srv('SPIDER0', 'SPIDER', '10.0.0.9', 25000),
      srv('TDBCTL0', 'TDBCTL', '10.0.0.9', 26000),
    ],
    target,
  );
  assert.deepEqual(
    members.map((m) => [m.serverName, m.role, m.shard, `${m.host}:${m.port}`]),
    [
      ['SPIDER0', 'spider', undefined, '10.0.0.9:25000'],
      ['SPIDER1', 'spider', undefined, '10.0.0.8:25000'],
      ['SPT0', 'master', 0, '10.0.0.1:20000'],
      ['SPT1', 'master', 1, '10.0.0.2:20000'],
      ['SPT_SLAVE1', 'slave', 1, '10.0.0.4:20000'],
    ],
  );
  assert.equal(members[0]?.endpoint.user, 'ini-user');
});

test('replication problems: SQL thread first (with its error), then IO, then lag over the limit', () => {
  const ok = { ioRunning: 'Yes', sqlRunning: 'Yes', lagS: 0, ioError: '', sqlError: '', sqlErrno: 0 };
  assert.equal(replicationProblem(ok), undefined);
  assert.match(replicationProblem({ ...ok, sqlRunning: 'No' }) ?? '', /SQL thread is not running \(stopped by an operator\?\)/);
  assert.match(replicationProblem({ ...ok, sqlRunning: 'No', sqlErrno: 1062, sqlError: 'Duplicate' }) ?? '', /error 1062 Duplicate/);
  assert.match(replicationProblem({ ...ok, ioRunning: 'Connecting', ioError: 'refused' }) ?? '', /IO thread is connecting: refused/);
  assert.match(replicationProblem({ ...ok, lagS: 301 }) ?? '', /lags 5m01s/);
  assert.match(replicationProblem(undefined) ?? '', /not configured/);
});

const row = (over: Partial<TaskRow> = {}): TaskRow => ({
  backupId: 'b',
  host: 'h',
  port: 1,
  shardValue: 0,
  serverName: 'SPT0',
  wrapper: 'mysql',
  status: 'init',
  taskPid: -1,
  createdAt: '',
  updatedAt: '',
  createdAgeS: 60,
  updatedAgeS: 60,
  ...over,
});
const presence = (over: Partial<PresenceRow> = {}): PresenceRow => ({
  host: 'h',
  port: 1,
  shardValue: 0,
  role: 'master',
  agentVersion: '0.1.0',
  agentHost: 'db1',
  agentPid: 42,
  tickIntervalMs: 10_000,
  paused: false,
  pauseReason: '',
  pauseUntil: '',
  runningBackupId: '',
  runningSince: '',
  runningBytes: null,
  ageS: 1,
  ...over,
});
const limits = { unclaimedAfterMs: 600_000, tickIntervalMs: 10_000 };
const ev = (over: Partial<Evidence>): Evidence => ({ row: row(), unreadable: false, presence: presence(), ...over });

test('wait: a live agent, a finished task or an unreadable presence say nothing', () => {
  assert.deepEqual(judge(ev({}), limits), {});
  assert.deepEqual(judge(ev({ row: row({ status: 'success' }), presence: undefined }), limits), {});
  assert.deepEqual(judge(ev({ presence: 'unreadable' }), limits), {});
});

test('wait: a lost agent is named; a waiting task is hopeless once the agent is lost for longer than unclaimed_after', () => {
  const named = judge(ev({ presence: presence({ ageS: 100 }) }), limits);
  assert.match(named.problem ?? '', /agent lost: its last tick on h:1 was 1m40s ago \(v0\.1\.0 on db1, pid 42\)/);
  assert.equal(named.hopeless, undefined);
  assert.match(judge(ev({ presence: presence({ ageS: 601 }) }), limits).hopeless ?? '', /agent lost for 10m01s/);
  // A running backup's supervisor records its end without the agent.
  assert.equal(judge(ev({ row: row({ status: 'running' }), presence: presence({ ageS: 9999 }) }), limits).hopeless, undefined);
});

test('wait: no agent at all is named after 3 ticks and never given up on; a paused host is named with reason and until', () => {
  assert.deepEqual(judge(ev({ row: row({ createdAgeS: 20 }), presence: undefined }), limits), {});
  const none = judge(ev({ row: row({ createdAgeS: 9999 }), presence: undefined }), limits);
  assert.match(none.problem ?? '', /no agent has ever announced itself on h:1/);
  assert.equal(none.hopeless, undefined);
  const paused = judge(ev({ presence: presence({ paused: true, pauseReason: 'disk swap', pauseUntil: '2026-11-26T00:00:00Z' }) }), limits);
  assert.match(paused.problem ?? '', /host paused until 2026-11-26T00:00:00Z: disk swap \(to end it: spiderbackup resume on db1\)/);
  const cluster = judge(ev({ presence: presence({ paused: true, pauseReason: 'cluster: x', pauseUntil: 'u' }) }), limits);
  assert.match(cluster.problem ?? '', /resume --cluster/);
});

test('wait: a replica agent that may not report is named as such and never given up on, stale presence or none', () => {
  for (const p of [undefined, presence({ ageS: 9999 })]) {
    const j = judge(ev({ row: row({ createdAgeS: 9999 }), presence: p, notReporting: true }), limits);
    assert.match(j.problem ?? '', /its agent on h:1 is not reporting: it needs SUPER or BINLOG ADMIN/);
    assert.equal(j.hopeless, undefined);
  }
  // A live presence wins (the grant was given meanwhile).
  assert.deepEqual(judge(ev({ notReporting: true }), limits), {});
});

test('wait: a replica row missing is named with its replication state, and hopeless after unclaimed_after', () => {
  const copy = row({ wrapper: 'mysql_slave', status: 'replicated', createdAgeS: 30 });
  const stopped = { problem: 'replication SQL thread is not running', lagS: null };
  const j = judge(ev({ row: undefined, masterCopy: copy, replication: stopped }), limits);
  assert.match(j.problem ?? '', /its row has not arrived by replication \(on the master for 30 s\): replication SQL thread is not running/);
  assert.equal(j.hopeless, undefined);
  const late = judge(ev({ row: undefined, masterCopy: { ...copy, createdAgeS: 700 }, replication: stopped }), limits);
  assert.match(late.hopeless ?? '', /never arrived by replication \(11m40s, over \[schedule\] unclaimed_after\)/);
  assert.match(
    judge(ev({ row: undefined, masterCopy: copy, replication: { problem: undefined, lagS: 4 } }), limits).problem ?? '',
    /threads run, 4 s behind/,
  );
  // Unreadable replica: its missing row says nothing.
  assert.deepEqual(judge(ev({ row: undefined, unreadable: true, masterCopy: copy }), limits), {});
});

test('wait: the same lost rule as status --cluster, floor included: at a 500 ms tick an agent 10 s late is not named lost', () => {
  const short = { unclaimedAfterMs: 600_000, tickIntervalMs: 500 };
  assert.deepEqual(judge(ev({ presence: presence({ ageS: 10, tickIntervalMs: 500 }) }), short), {});
  assert.match(judge(ev({ presence: presence({ ageS: 32, tickIntervalMs: 500 }) }), short).problem ?? '', /agent lost/);
  // No agent at all: named once it has been as long as an agent takes to be called lost.
  assert.deepEqual(judge(ev({ row: row({ createdAgeS: 10 }), presence: undefined }), short), {});
  assert.match(judge(ev({ row: row({ createdAgeS: 32 }), presence: undefined }), short).problem ?? '', /no agent has ever announced/);
});
