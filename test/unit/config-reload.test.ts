// What a reload may change and how (planReload is pure; the daemon only carries the plan out).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentConfig } from '../../src/config/agent.js';
import { loadDaemonConfig, planMetricsSwitch, planReload } from '../../src/daemon/config.js';

const d = mkdtempSync(join(tmpdir(), 'sb-reload-'));
let n = 0;
function config(text: string): AgentConfig {
  const f = join(d, `a${n++}.ini`);
  writeFileSync(f, `[agent]\nstate_dir = ${d}/state\n${text}`);
  return loadDaemonConfig(f);
}

test('reload plan: nothing changed, nothing to do', () => {
  const a = config('tick_interval = 5s\n[metrics]\nlisten = 127.0.0.1:9797\n');
  const plan = planReload(a, config('tick_interval = 5s\n[metrics]\nlisten = 127.0.0.1:9797\n'));
  assert.deepEqual(
    {
      kept: plan.kept,
      tick: plan.tickInterval,
      cron: plan.cron,
      metrics: plan.metrics,
      sw: plan.metricsSwitch,
      logFile: plan.logFile,
      logLevel: plan.logLevel,
    },
    { kept: [], tick: false, cron: false, metrics: false, sw: 'keep', logFile: false, logLevel: false },
  );
});

test('reload plan: host_lock and state_dir are kept until a restart, with a message each; the rest applies', () => {
  const old = config('host_lock = /run/lock/a.lock\n');
  const next = config(
    `state_dir = ${d}/other\nhost_lock = /run/lock/b.lock\ntick_interval = 3s\n[log]\nlevel = debug\nfile = ${d}/agent.log\n`,
  );
  const plan = planReload(old, next);
  assert.equal(plan.config.agent.hostLock, '/run/lock/a.lock');
  assert.equal(plan.config.agent.stateDir, `${d}/state`);
  assert.deepEqual(plan.kept, [
    `[agent] state_dir stays ${d}/state until a restart (asked: ${d}/other)`,
    '[agent] host_lock stays /run/lock/a.lock until a restart (asked: /run/lock/b.lock)',
  ]);
  assert.equal(plan.config.agent.tickIntervalMs, 3000);
  assert.equal(plan.config.log.level, 'debug');
  assert.deepEqual([plan.tickInterval, plan.logLevel, plan.logFile], [true, true, true]);
  assert.equal(next.agent.hostLock, '/run/lock/b.lock', 'the loaded config is not changed in place');
});

test("reload plan: the new config's warnings travel with it", () => {
  const plan = planReload(config(''), config('tick_intervall = 1s\n'));
  assert.equal(plan.config.warnings.length, 1);
  assert.match(plan.config.warnings[0] as string, /\[agent\] tick_intervall: unknown key \(ignored\)/);
});

test('reload plan: allow_remote alone does not restart the metrics listener', () => {
  const plan = planReload(
    config('[metrics]\nlisten = 127.0.0.1:9797\n'),
    config('[metrics]\nlisten = 127.0.0.1:9797\nallow_remote = true\n'),
  );
  assert.equal(plan.metrics, false);
  assert.equal(plan.config.metrics.allowRemote, true);
});

test('metrics switch: a new port starts alongside the old, the same port replaces it in place, off only closes', () => {
  assert.equal(planMetricsSwitch('127.0.0.1:9797', '127.0.0.1:9797'), 'keep');
  assert.equal(planMetricsSwitch('off', 'off'), 'keep');
  assert.equal(planMetricsSwitch('127.0.0.1:9797', '127.0.0.1:9798'), 'alongside');
  assert.equal(planMetricsSwitch('off', '127.0.0.1:9797'), 'alongside');
  assert.equal(planMetricsSwitch('127.0.0.1:9797', '0.0.0.0:9797'), 'in-place');
  assert.equal(planMetricsSwitch('[::1]:9797', 'localhost:9797'), 'in-place');
  assert.equal(planMetricsSwitch('127.0.0.1:9797', 'off'), 'off');
  const plan = planReload(config('[metrics]\nlisten = 127.0.0.1:9797\n'), config('[metrics]\nlisten = off\n'));
  assert.deepEqual([plan.metrics, plan.metricsSwitch], [true, 'off']);
});
