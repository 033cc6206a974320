// The example alert rules the README shows are a real file (config/prometheus-alerts.yml) that
// Prometheus' own checker accepts, and the README names each of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promtool } from './support/prom.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const rules = join(root, 'config/prometheus-alerts.yml');

test('promtool check rules accepts config/prometheus-alerts.yml', async () => {
  const r = await promtool(['check', 'rules', rules]);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /SUCCESS: 10 rules found/);
});

test('the README shows the rules of the file', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const text = readFileSync(rules, 'utf8');
  const names = [...text.matchAll(/- alert: (\w+)/g)].map((m) => m[1] as string);
  assert.ok(names.includes('SpiderbackupNoSuccessfulBackup') && names.includes('SpiderbackupAgentDown'));
  for (const n of names) assert.ok(readme.includes(n), `README does not mention ${n}`);
  for (const expr of [...text.matchAll(/expr: (.+)/g)].map((m) => m[1] as string)) assert.ok(readme.includes(expr), `README lacks ${expr}`);
});

test('promtool test rules: SpiderbackupInstanceDown fires after 5 min of instance_up 0, not while the host is paused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-rules-'));
  try {
    const tests = join(dir, 'instance-down.test.yml');
    const lbl = (metric: string, extra = '') => `${metric}{job="spiderbackup",instance="h1:9797"${extra}}`;
    writeFileSync(
      tests,
      [
        `rule_files: [${JSON.stringify(rules)}]`,
        'evaluation_interval: 1m',
        'tests:',
        '  - interval: 1m',
        '    input_series:',
        // Port 20000 is down from minute 2 on; port 20001 stays up. h2 is paused with its instance down.
        `      - series: '${lbl('spiderbackup_instance_up', ',port="20000",role="master"')}'`,
        "        values: '1 1 0x20'",
        `      - series: '${lbl('spiderbackup_instance_up', ',port="20001",role="slave"')}'`,
        "        values: '1x22'",
        `      - series: '${lbl('spiderbackup_paused')}'`,
        "        values: '0x22'",
        `      - series: 'spiderbackup_instance_up{job="spiderbackup",instance="h2:9797",port="20002",role="master"}'`,
        "        values: '0x22'",
        `      - series: 'spiderbackup_paused{job="spiderbackup",instance="h2:9797"}'`,
        "        values: '1x22'",
        '    alert_rule_test:',
        '      - eval_time: 5m',
        '        alertname: SpiderbackupInstanceDown',
        '        exp_alerts: []',
        '      - eval_time: 8m',
        '        alertname: SpiderbackupInstanceDown',
        '        exp_alerts:',
        '          - exp_labels: { severity: critical, job: spiderbackup, instance: "h1:9797", port: "20000", role: master }',
        '            exp_annotations:',
        '              summary: "spiderbackup on h1:9797 cannot work with port 20000 (master)"',
        '              description: "It cannot be reached or refuses the agent\'s login. `spiderbackup status` on the host names the error; /healthz answers 503."',
        '',
      ].join('\n'),
    );
    const r = await promtool(['test', 'rules', tests]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /SUCCESS/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('promtool test rules: SpiderbackupRestorePointFailed fires on the first failed point, and clears an hour later', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-rules-'));
  try {
    const tests = join(dir, 'restore-point.test.yml');
    const series = (instance: string) => `spiderbackup_restore_point_failures_total{job="spiderbackup",instance="${instance}"}`;
    writeFileSync(
      tests,
      [
        `rule_files: [${JSON.stringify(rules)}]`,
        'evaluation_interval: 1m',
        'tests:',
        '  - interval: 1m',
        '    input_series:',
        // h1: the counter starts at 0 and one point fails at minute 10; h2 never fails.
        `      - series: '${series('h1:9797')}'`,
        "        values: '0x9 1x120'",
        `      - series: '${series('h2:9797')}'`,
        "        values: '0x130'",
        '    alert_rule_test:',
        '      - eval_time: 5m',
        '        alertname: SpiderbackupRestorePointFailed',
        '        exp_alerts: []',
        '      - eval_time: 15m',
        '        alertname: SpiderbackupRestorePointFailed',
        '        exp_alerts:',
        '          - exp_labels: { severity: warning, job: spiderbackup, instance: "h1:9797" }',
        '            exp_annotations:',
        '              summary: "1 restore point(s) of h1:9797 failed in the last hour"',
        '              description: "Points cannot be taken, so restores to a recent moment are not possible. `spiderbackup logs` on the host names the error (`automatic restore point … not taken`)."',
        '      - eval_time: 80m',
        '        alertname: SpiderbackupRestorePointFailed',
        '        exp_alerts: []',
        '',
      ].join('\n'),
    );
    const r = await promtool(['test', 'rules', tests]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /SUCCESS/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('promtool test rules: SpiderbackupBinlogArchiveLag fires when a lag stays over max_lag for 2 min', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-rules-'));
  try {
    const tests = join(dir, 'archive-lag.test.yml');
    const lbl = (metric: string, extra = '') => `${metric}{job="spiderbackup",instance="h1:9797"${extra}}`;
    writeFileSync(
      tests,
      [
        `rule_files: [${JSON.stringify(rules)}]`,
        'evaluation_interval: 1m',
        'tests:',
        '  - interval: 1m',
        '    input_series:',
        // Port 20000 falls behind from minute 3 on; port 20001 stays within the bound.
        `      - series: '${lbl('spiderbackup_binlog_archive_lag_seconds', ',port="20000",role="master"')}'`,
        "        values: '0 10 30 90 120 150 180 200 220 240'",
        `      - series: '${lbl('spiderbackup_binlog_archive_lag_seconds', ',port="20001",role="master"')}'`,
        "        values: '0 20 40 55 0 20 40 55 0 20'",
        `      - series: '${lbl('spiderbackup_binlog_archive_max_lag_seconds')}'`,
        "        values: '60x10'",
        '    alert_rule_test:',
        '      - eval_time: 4m',
        '        alertname: SpiderbackupBinlogArchiveLag',
        '        exp_alerts: []',
        '      - eval_time: 6m',
        '        alertname: SpiderbackupBinlogArchiveLag',
        '        exp_alerts:',
        '          - exp_labels: { severity: warning, job: spiderbackup, instance: "h1:9797", port: "20000", role: master }',
        '            exp_annotations:',
        '              summary: "The binlog archive of h1:9797 port 20000 is 3m 0s behind"',
        '              description: "More than [archive] max_lag. `spiderbackup status` on the host names the archiver\'s problem (the stream, the repository, a purged binlog)."',
        '',
      ].join('\n'),
    );
    const r = await promtool(['test', 'rules', tests]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /SUCCESS/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('promtool test rules: SpiderbackupRestoreDrillFailed fires on a failed drill and clears a day later', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-rules-'));
  try {
    const tests = join(dir, 'drill-failed.test.yml');
    const series = (instance: string) => `spiderbackup_restore_drill_failures_total{job="spiderbackup",instance="${instance}"}`;
    writeFileSync(
      tests,
      [
        `rule_files: [${JSON.stringify(rules)}]`,
        'evaluation_interval: 1h',
        'tests:',
        '  - interval: 1h',
        '    input_series:',
        // h1: the counter starts at 0 and a drill fails at hour 10; h2 (configured, never failed) stays at 0.
        `      - series: '${series('h1:9797')}'`,
        "        values: '0x9 1x48'",
        `      - series: '${series('h2:9797')}'`,
        "        values: '0x58'",
        '    alert_rule_test:',
        '      - eval_time: 5h',
        '        alertname: SpiderbackupRestoreDrillFailed',
        '        exp_alerts: []',
        '      - eval_time: 11h',
        '        alertname: SpiderbackupRestoreDrillFailed',
        '        exp_alerts:',
        '          - exp_labels: { severity: warning, job: spiderbackup, instance: "h1:9797" }',
        '            exp_annotations:',
        '              summary: "The restore drill of h1:9797 failed in the last day"',
        '              description: "The backups could not be shown to restore. `spiderbackup status` on the host (Drill) and `spiderbackup logs` name what failed (`restore drill … FAILED`)."',
        '      - eval_time: 36h',
        '        alertname: SpiderbackupRestoreDrillFailed',
        '        exp_alerts: []',
        '',
      ].join('\n'),
    );
    const r = await promtool(['test', 'rules', tests]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /SUCCESS/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('promtool test rules: SpiderbackupRestoreDrillStale fires 8 days after the newest success of any agent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-rules-'));
  try {
    const tests = join(dir, 'drill-stale.test.yml');
    const series = (instance: string) =>
      `spiderbackup_restore_drill_last_success_timestamp_seconds{job="spiderbackup",instance="${instance}"}`;
    writeFileSync(
      tests,
      [
        `rule_files: [${JSON.stringify(rules)}]`,
        'evaluation_interval: 1h',
        'tests:',
        '  - interval: 1h',
        '    input_series:',
        // h1 (the old primary) last succeeded at second 1000; the primary moved to h2, whose drill succeeded
        // on day 2 and never again. Only h2's success counts: stale from day 10 on (8 days after it).
        `      - series: '${series('h1:9797')}'`,
        "        values: '1000x300'",
        `      - series: '${series('h2:9797')}'`,
        "        values: '_x47 172800x252'",
        '    alert_rule_test:',
        '      - eval_time: 9d',
        '        alertname: SpiderbackupRestoreDrillStale',
        '        exp_alerts: []',
        '      - eval_time: 10d2h',
        '        alertname: SpiderbackupRestoreDrillStale',
        '        exp_alerts:',
        '          - exp_labels: { severity: warning, job: spiderbackup }',
        '            exp_annotations:',
        '              summary: "No restore drill of spiderbackup succeeded for 8d 2h 0m 0s"',
        '              description: "Nobody knows whether the backups restore, nor how long it takes. `spiderbackup status` on the primary spider node shows the last drill."',
        '',
      ].join('\n'),
    );
    const r = await promtool(['test', 'rules', tests]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /SUCCESS/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
