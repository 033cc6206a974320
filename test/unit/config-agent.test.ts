// The agent INI: duration bounds, unknown sections and keys (warnings, or errors with strict),
// [agent] host_lock, and the example file against the schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_SCHEMA, loadAgentConfig, DEFAULT_ARCHIVE_SERVER_ID } from '../../src/config/agent.js';
import { formatConfigDuration, MAX_TIMER_MS, parseDuration } from '../../src/config/duration.js';
import { ConfigError } from '../../src/errors.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const EXAMPLE = join(root, 'config/spiderbackup.ini');

function agentIni(text: string): string {
  const f = join(mkdtempSync(join(tmpdir(), 'sb-agent-')), 'spiderbackup.ini');
  writeFileSync(f, text);
  return f;
}

const refused = (f: string, re: RegExp) => (e: unknown) => e instanceof ConfigError && e.message.startsWith(`${f}: `) && re.test(e.message);

test('durations: every one has a maximum a node timer can hold', () => {
  let durations = 0;
  for (const [section, keys] of Object.entries(AGENT_SCHEMA)) {
    for (const [key, spec] of Object.entries(keys)) {
      if (spec.kind !== 'duration') continue;
      durations++;
      assert.ok(spec.max <= MAX_TIMER_MS, `[${section}] ${key}`);
      assert.ok(
        spec.min <= (parseDuration(spec.default) as number) && (parseDuration(spec.default) as number) <= spec.max,
        `[${section}] ${key} default in range`,
      );
    }
  }
  assert.equal(durations, 7);
  assert.equal(MAX_TIMER_MS, 2_147_483_647);
});

test('durations: above the maximum is a ConfigError naming file, key and value; the maximum itself is fine', () => {
  const cases: [string, string, string][] = [
    ['agent', 'tick_interval', '24h'],
    ['backup', 'kill_grace', '1h'],
    ['schedule', 'wait_interval', '1h'],
    ['schedule', 'unclaimed_after', '48h'],
  ];
  for (const [section, key, max] of cases) {
    const ok = loadAgentConfig(agentIni(`[${section}]\n${key} = ${max}\n`));
    assert.equal(ok.warnings.length, 0);
    for (const over of [`${max}1s`, '30d', '99999999999999999999d']) {
      const f = agentIni(`[${section}]\n${key} = ${over}\n`);
      assert.throws(
        () => loadAgentConfig(f),
        refused(f, new RegExp(`^\\S+: \\[${section}\\] ${key} = "${over}": must be at most ${max}$`)),
        `${key} = ${over}`,
      );
    }
  }
  const f = agentIni('[agent]\ntick_interval = 50ms\n');
  assert.throws(() => loadAgentConfig(f), refused(f, /\[agent\] tick_interval = "50ms": must be at least 100ms$/));
  assert.equal(loadAgentConfig(agentIni('[backup]\nkill_grace = 0\n')).backup.killGraceMs, 0);
  assert.equal(formatConfigDuration(0), '0s');
});

test('unknown sections and keys: one warning each, naming file, section and key; the rest still loads', () => {
  const f = agentIni(
    'stray = 1\n[agent]\ntick_intervall = 5s\ntick_interval = 2s\n[bakup]\nkill_grace = 1s\n[agent.extra]\nx = 1\n[metrics]\nlisten = ' +
      'off\nallow_remote = false\nconstructor = 1\n',
  );
  const c = loadAgentConfig(f);
  assert.equal(c.agent.tickIntervalMs, 2000);
  assert.equal(c.backup.killGraceMs, 10_000, 'a key of an unknown section is not read');
  assert.deepEqual(c.warnings, [
    `${f}: stray: key outside any section (ignored)`,
    `${f}: [agent] tick_intervall: unknown key (ignored); did you mean tick_interval?`,
    `${f}: [agent.extra]: unknown section (ignored)`,
    `${f}: [bakup]: unknown section (ignored); did you mean [backup]?`,
    `${f}: [metrics] constructor: unknown key (ignored)`,
  ]);
  assert.ok(c.warnings.every((w) => !w.includes('\n')));
});

test('unknown names with strict: a ConfigError naming the first and listing the others', () => {
  const f = agentIni('[agent]\ntick_intervall = 5s\n[bakup]\nx = 1\n');
  assert.throws(
    () => loadAgentConfig(f, process.cwd(), { strict: true }),
    refused(
      f,
      new RegExp(
        String.raw`^\S+: \[agent\] tick_intervall = "5s": unknown key \(refused in strict mode\); ` +
          String.raw`did you mean tick_interval\?; also \[bakup\]: unknown section$`,
      ),
    ),
  );
  const g = agentIni('[bakup]\nx = 1\n');
  assert.throws(
    () => loadAgentConfig(g, process.cwd(), { strict: true }),
    refused(g, /^\S+: \[bakup\]: unknown section \(refused in strict mode\); did you mean \[backup\]\?$/),
  );
  assert.equal(loadAgentConfig(agentIni('[agent]\ntick_interval = 5s\n'), process.cwd(), { strict: true }).warnings.length, 0);
});

test('no file, no warnings: the defaults', () => {
  const c = loadAgentConfig(undefined, '/some/cwd', { strict: true });
  assert.deepEqual(c.warnings, []);
  assert.equal(c.agent.hostLock, '/run/lock/spiderbackup/host.lock');
});

test('[agent] host_lock: a path, resolved against the working directory', () => {
  const d = mkdtempSync(join(tmpdir(), 'sb-agent-'));
  const f = join(d, 'a.ini');
  writeFileSync(f, '[agent]\nhost_lock = locks/host.lock\n');
  assert.equal(loadAgentConfig(f, d).agent.hostLock, join(d, 'locks/host.lock'));
  writeFileSync(f, '[agent]\nhost_lock = /var/lock/sb.lock\n');
  assert.equal(loadAgentConfig(f, d).agent.hostLock, '/var/lock/sb.lock');
});

test('the example file documents every key of the schema in its section, and loads without warnings', () => {
  const text = readFileSync(EXAMPLE, 'utf8');
  const sections = new Map<string, string>();
  for (const part of text.split(/^(?=\[)/m)) {
    const m = /^\[([a-z]+)\]/.exec(part);
    if (m) sections.set(m[1] as string, part);
  }
  for (const [section, keys] of Object.entries(AGENT_SCHEMA)) {
    for (const key of Object.keys(keys))
      assert.match(sections.get(section) ?? '', new RegExp(`^;?${key} =`, 'm'), `[${section}] ${key} is documented`);
  }
  const c = loadAgentConfig(EXAMPLE, process.cwd(), { strict: true });
  assert.deepEqual(c.warnings, []);
  assert.equal(c.agent.hostLock, '/run/lock/spiderbackup/host.lock');
});

test('[schedule] tdbctl: host:port, unset by default; anything else a ConfigError naming file, key and value', () => {
  assert.equal(loadAgentConfig(agentIni('[schedule]\n')).schedule.tdbctl, undefined);
  assert.deepEqual(loadAgentConfig(agentIni('[schedule]\ntdbctl = 10.0.0.5:26000\n')).schedule.tdbctl, { host: '10.0.0.5', port: 26000 });
  assert.deepEqual(loadAgentConfig(agentIni('[schedule]\ntdbctl = tdbctl-1.example:26001\n')).schedule.tdbctl, {
    host: 'tdbctl-1.example',
    port: 26001,
  });
  assert.deepEqual(loadAgentConfig(agentIni('[schedule]\ntdbctl = [::1]:26000\n')).schedule.tdbctl, { host: '::1', port: 26000 });
  for (const bad of ['10.0.0.5', '10.0.0.5:0', '10.0.0.5:70000', 'a b:26000', ':26000']) {
    const f = agentIni(`[schedule]\ntdbctl = ${bad}\n`);
    assert.throws(() => loadAgentConfig(f), refused(f, /tdbctl = ".*": must be host:port of the tdbctl node/), bad);
  }
});

test('[schedule] restore_point_interval: off by default, a duration of at least 1s, a bad value names file, key and value', () => {
  assert.equal(loadAgentConfig(agentIni('[schedule]\n')).schedule.restorePointIntervalMs, undefined);
  assert.equal(loadAgentConfig(agentIni('[schedule]\nrestore_point_interval = off\n')).schedule.restorePointIntervalMs, undefined);
  assert.equal(loadAgentConfig(agentIni('[schedule]\nrestore_point_interval = 15m\n')).schedule.restorePointIntervalMs, 900_000);
  assert.equal(loadAgentConfig(agentIni('[schedule]\nrestore_point_interval = 1s\n')).schedule.restorePointIntervalMs, 1000);
  // Independent of the per-backup switch.
  const both = loadAgentConfig(agentIni('[schedule]\nrestore_points = off\nrestore_point_interval = 2s\n'));
  assert.equal(both.schedule.restorePoints, false);
  assert.equal(both.schedule.restorePointIntervalMs, 2000);
  for (const [text, re] of [
    ['500ms', /\[schedule\] restore_point_interval = "500ms": must be at least 1s$/],
    ['soon', /\[schedule\] restore_point_interval = "soon": must be a duration such as 15m/],
    ['25h', /\[schedule\] restore_point_interval = "25h": must be at most 24h$/],
  ] as const) {
    const f = agentIni(`[schedule]\nrestore_point_interval = ${text}\n`);
    assert.throws(() => loadAgentConfig(f), refused(f, re));
  }
});

test('[archive]: binlogs on by default with a repository, off without; on without one is a ConfigError naming the key', () => {
  const none = loadAgentConfig(agentIni('[agent]\nstate_dir = /var/lib/sb\n'));
  assert.equal(none.archive.binlogs, false);
  assert.equal(none.archive.serverId, DEFAULT_ARCHIVE_SERVER_ID);
  assert.equal(none.archive.maxLagMs, 60_000);
  assert.equal(none.archive.spoolDir, '/var/lib/sb/binlog-spool');
  const repo = '[repository]\ntype = posix\npath = /mnt/backup\nprefix = c1\n';
  assert.equal(loadAgentConfig(agentIni(repo)).archive.binlogs, true);
  assert.equal(loadAgentConfig(agentIni(`${repo}[archive]\nbinlogs = off\n`)).archive.binlogs, false);
  const on = agentIni('[archive]\nbinlogs = on\n');
  assert.throws(() => loadAgentConfig(on), refused(on, /\[archive\] binlogs.*needs a \[repository\]/));
  const c = loadAgentConfig(agentIni(`${repo}[archive]\nserver_id = 4000000000\nmax_lag = 2m\nspool_dir = /data/spool\n`));
  assert.deepEqual(c.archive, { binlogs: true, serverId: 4_000_000_000, maxLagMs: 120_000, spoolDir: '/data/spool' });
  for (const bad of ['0', '4294967296', 'x']) {
    const f = agentIni(`[archive]\nserver_id = ${bad}\n`);
    assert.throws(() => loadAgentConfig(f), refused(f, /\[archive\] server_id/));
  }
});
