import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '../../src/config/duration.js';
import { expandCommand, parseCommandTemplate } from '../../src/config/command-template.js';
import { loadAgentConfig } from '../../src/config/agent.js';
import { loadInstanceConfig, isSpiderInstance } from '../../src/config/instance.js';
import { discoverInstances } from '../../src/config/discover.js';
import { ConfigError } from '../../src/errors.js';

const dir = () => mkdtempSync(join(tmpdir(), 'sb-cfg-'));

test('durations: units, combinations, bare numbers are seconds, junk refused', () => {
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('1m'), 60_000);
  assert.equal(parseDuration('24h'), 86_400_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('60'), 60_000);
  assert.equal(parseDuration('0.5'), 500);
  for (const bad of ['', 'abc', '10x', '1h junk', '-5s', 'h']) assert.equal(parseDuration(bad), undefined, bad);
});

test('command templates are split before substitution: a value never adds or splits an argument', () => {
  const t = parseCommandTemplate(
    '{install_dir}/dbbackup dumpbackup --config {config} --backup-id {backup_id}',
    'f.ini',
    '[backup] remote_command',
  );
  const argv = expandCommand(t, {
    install_dir: '/opt/x y',
    config: '/etc/a b.ini',
    backup_id: 'id; rm -rf /',
    shard_value: '1',
    port: '1',
    host: 'h',
  });
  assert.deepEqual(argv, ['/opt/x y/dbbackup', 'dumpbackup', '--config', '/etc/a b.ini', '--backup-id', 'id; rm -rf /']);
  assert.throws(
    () => parseCommandTemplate('run {nope}', 'f.ini', '[backup] spider_command'),
    (e: unknown) =>
      e instanceof ConfigError && /f\.ini: \[backup\] spider_command = "run \{nope\}": unknown placeholder \{nope\}/.test(e.message),
  );
  assert.throws(() => parseCommandTemplate('   ', 'f.ini', 'k'), ConfigError);
});

test('agent config: defaults when the default file is missing; explicit file must exist', () => {
  const c = loadAgentConfig(undefined, '/some/cwd');
  assert.equal(c.agent.configDir, '/some/cwd');
  assert.equal(c.agent.tickIntervalMs, 10_000);
  assert.equal(c.schedule.waitIntervalMs, 20_000);
  assert.equal(c.schedule.unclaimedAfterMs, 600_000);
  assert.equal(c.schedule.waitConcurrency, 16);
  assert.deepEqual(c.backup.remoteCommand.slice(0, 2), ['{install_dir}/dbbackup', 'dumpbackup']);
  assert.equal(c.backup.installDir, '/home/mysql/dbbackup-go');
  assert.equal(c.metrics.listen, '127.0.0.1:9797');
  assert.throws(
    () => loadAgentConfig('/nonexistent/agent.ini'),
    (e: unknown) => e instanceof ConfigError && e.message.includes('/nonexistent/agent.ini'),
  );
});

test('agent config: every bad value is named with file, key and value', () => {
  const d = dir();
  const cases: [string, RegExp][] = [
    ['[agent]\ntick_interval = soon\n', /\[agent\] tick_interval = "soon": must be a duration/],
    ['[schedule]\nwait_concurrency = 0\n', /\[schedule\] wait_concurrency = "0": must be at least 1/],
    ['[metrics]\nlisten = 0.0.0.0:9797\n', /\[metrics\] listen = "0.0.0.0:9797": is not a loopback address/],
    ['[log]\nlevel = loud\n', /\[log\] level = "loud"/],
    ['[backup]\nremote_command = x {bad}\n', /\[backup\] remote_command = "x \{bad\}"/],
  ];
  for (const [text, re] of cases) {
    const f = join(d, 'agent.ini');
    writeFileSync(f, text);
    assert.throws(
      () => loadAgentConfig(f),
      (e: unknown) => e instanceof ConfigError && e.message.startsWith(f) && re.test(e.message),
      text,
    );
  }
  const f = join(d, 'ok.ini');
  writeFileSync(f, '[metrics]\nlisten = 0.0.0.0:9797\nallow_remote = true\n[agent]\ntick_interval = 2\nconfig_dir = conf.d\n');
  const c = loadAgentConfig(f, d);
  assert.equal(c.agent.tickIntervalMs, 2000);
  assert.equal(c.agent.configDir, join(d, 'conf.d'));
});

test('instance config: the old format parses unchanged, foreign sections kept', () => {
  const d = dir();
  const f = join(d, 'dbbackup.20000.ini');
  writeFileSync(
    f,
    '[Public]\nMysqlHost = 10.0.0.1\nMysqlPort = 20000\nMysqlUser = backup\nMysqlPasswd = p@ss=word;#x\nMysqlRole = master\nShardValue ' +
      '= 3\nBackupDir = /data/dbbak\nBackupType = logical\n\n[LogicalBackup]\nThreads = 4\n',
  );
  const c = loadInstanceConfig(f);
  assert.equal(c.host, '10.0.0.1');
  assert.equal(c.port, 20000);
  assert.equal(c.shardValue, 3);
  assert.equal(c.role, 'master');
  assert.equal(c.sections.LogicalBackup?.Threads, '4');
  assert.equal(isSpiderInstance(c), false);
  assert.equal(isSpiderInstance({ role: 'master', port: 25000 }), true);
  assert.equal(isSpiderInstance({ role: 'spider_master', port: 3306 }), true);
});

test('discovery: a broken file is reported and skipped, the others are served', () => {
  const d = dir();
  writeFileSync(join(d, 'dbbackup.20000.ini'), '[Public]\nMysqlHost=h\nMysqlPort=20000\nMysqlUser=u\nMysqlPasswd=p\n');
  writeFileSync(join(d, 'dbbackup.20001.ini'), '[Public]\nMysqlHost=h\nMysqlPort=twenty\nMysqlUser=u\nMysqlPasswd=p\n');
  writeFileSync(join(d, 'dbbackup.20002.ini'), '[Public]\nMysqlHost=h\nMysqlPort=20002\nMysqlPasswd=p\n');
  writeFileSync(join(d, 'other.ini'), 'ignored');
  const { instances, errors } = discoverInstances(d);
  assert.deepEqual(
    instances.map((i) => i.port),
    [20000],
  );
  assert.equal(errors.length, 2);
  assert.match(errors[0]?.message ?? '', /dbbackup\.20001\.ini: \[Public\] MysqlPort = "twenty": must be an integer/);
  assert.match(errors[1]?.message ?? '', /dbbackup\.20002\.ini: \[Public\] MysqlUser = \(missing\): required/);
  const explicit = discoverInstances('/nonexistent', [join(d, 'dbbackup.20000.ini'), join(d, 'missing.ini')]);
  assert.equal(explicit.instances.length, 1);
  assert.match(explicit.errors[0]?.message ?? '', /missing\.ini: cannot read/);
});

test("discovery: tdbctl's own drop-in (spider port + 1000, or MysqlRole tdbctl) is recognised and not served", () => {
  const d = dir();
  const ini = (port: number, role: string) =>
    writeFileSync(
      join(d, `dbbackup.${port}.ini`),
      `[Public]\nMysqlHost=h\nMysqlPort=${port}\nMysqlUser=u\nMysqlPasswd=p\nMysqlRole=${role}\n`,
    );
  ini(20000, 'master');
  ini(25000, 'spider_master');
  // The old tool writes tdbctl's ini with the spider's role: only its port tells.
  ini(26000, 'spider_master');
  // A master 1000 above a master is just a master.
  ini(21000, 'master');
  ini(3306, 'tdbctl');
  const found = discoverInstances(d);
  assert.deepEqual(
    found.instances.map((i) => i.port),
    [20000, 21000, 25000],
  );
  assert.deepEqual(
    found.tdbctl.map((t) => [t.instance.port, t.spiderPort, t.note]),
    [
      [3306, undefined, 'dbbackup.3306.ini: MysqlRole tdbctl (a tdbctl node), not backed up by the agent'],
      [26000, 25000, 'dbbackup.26000.ini: tdbctl of the spider node 25000, not backed up by the agent'],
    ],
  );
});
