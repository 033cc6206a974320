// MysqlPasswd in the instance drop-ins: read as go-ini (the backup tool's reader) reads it, a cut
// password is flagged, and the flag is added to "Access denied" messages, never the password.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { explainAccessDenied, goIniValue, loadInstanceConfig, rawValue } from '../../src/config/instance.js';
import { ConfigError } from '../../src/errors.js';

function dropIn(passwordLine: string, extra = ''): string {
  const f = join(mkdtempSync(join(tmpdir(), 'sb-pw-')), 'dbbackup.20000.ini');
  writeFileSync(f, `[Public]\nMysqlHost = 10.0.0.1\nMysqlPort = 20000\nMysqlUser = backup\n${passwordLine}\nMysqlRole = master\n${extra}`);
  return f;
}

test('go-ini values: backticks and """ are literal to the last closing quote; otherwise ; and # start a comment', () => {
  const cases: [string, string, (';' | '#')?][] = [
    [' plain', 'plain'],
    [' `pa;ss#word`', 'pa;ss#word'],
    [' `pa"s`s` ; comment', 'pa"s`s'],
    [' """pa;ss"""', 'pa;ss'],
    [' "pass"', 'pass'],
    [" 'pa ss' ", 'pa ss'],
    [' "pa"ss"', '"pa"ss"'],
    [' p@ss=word;#x', 'p@ss=word', ';'],
    [' secret # the prod one', 'secret', '#'],
    // A "…" does not protect a ; for go-ini: what is left is not surrounded by quotes any more.
    [' "pa;ss"', '"pa', ';'],
    [' \\;x', '\\', ';'],
    ['', ''],
    ['   ', ''],
    [' ``', ''],
  ];
  for (const [raw, value, cutAt] of cases) assert.deepEqual(goIniValue(raw), cutAt === undefined ? { value } : { value, cutAt }, raw);
  assert.deepEqual(goIniValue(' `no end'), { value: '', unclosed: '`' });
});

test('the raw line: last one of the key in its section, comments and other sections skipped', () => {
  const text =
    '\uFEFF; MysqlPasswd = commented\n[Other]\nMysqlPasswd = other\n[Public]\r\n# MysqlPasswd = no\n  MysqlPasswd = ' +
    'first\r\nMysqlPasswd=`a;b`  \r\n[Public2]\nMysqlPasswd = x\n';
  assert.equal(rawValue(text, 'Public', 'MysqlPasswd'), '`a;b`  ');
  assert.equal(rawValue(text, 'Public', 'MysqlUser'), undefined);
  assert.equal(rawValue('MysqlPasswd = top\n', 'Public', 'MysqlPasswd'), undefined);
});

test('drop-in: a quoted password keeps its ; and #, the other keys are read as before, no warning', () => {
  const c = loadInstanceConfig(dropIn('MysqlPasswd = `x;y#z`', '[LogicalBackup]\nThreads = 4\n'));
  assert.equal(c.password, 'x;y#z');
  assert.equal(c.passwordWarning, undefined);
  assert.equal(c.port, 20000);
  assert.equal(c.user, 'backup');
  assert.equal(c.sections.LogicalBackup?.Threads, '4');
  assert.equal(loadInstanceConfig(dropIn('MysqlPasswd = """x;y"""')).password, 'x;y');
  assert.equal(loadInstanceConfig(dropIn('MysqlPasswd = "plain"')).password, 'plain');
  assert.equal(loadInstanceConfig(dropIn('MysqlPasswd =')).password, '');
});

test('drop-in: an unquoted ; or # is recorded as passwordWarning naming file and key, not the password', () => {
  const f = dropIn('MysqlPasswd = s3cr;et');
  const c = loadInstanceConfig(f);
  assert.equal(c.password, 's3cr');
  assert.equal(
    c.passwordWarning,
    `${f}: [Public] MysqlPasswd contains an unquoted ';': everything from it on is read as a comment; write the password as \`…\` ` +
      `(backticks; the backup tool does not honour "…" around a ; or #)`,
  );
  assert.ok(!c.passwordWarning?.includes('s3cr'));
  const g = dropIn('MysqlPasswd = "s3cr#et"');
  const d = loadInstanceConfig(g);
  assert.equal(d.password, '"s3cr');
  assert.match(d.passwordWarning ?? '', /MysqlPasswd contains an unquoted '#'/);
  assert.ok(!d.passwordWarning?.includes('s3cr'));
});

test('drop-in: a quote that does not close on its line is a ConfigError without the password; a missing key still is', () => {
  const f = dropIn('MysqlPasswd = `s3cret');
  assert.throws(
    () => loadInstanceConfig(f),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message === `${f}: [Public] MysqlPasswd: the opening \` has no closing \` on the same line` &&
      !e.message.includes('s3cret'),
  );
  const g = join(mkdtempSync(join(tmpdir(), 'sb-pw-')), 'dbbackup.20001.ini');
  writeFileSync(g, '[Public]\nMysqlHost = h\nMysqlPort = 20001\nMysqlUser = u\n');
  assert.throws(
    () => loadInstanceConfig(g),
    (e: unknown) => e instanceof ConfigError && /\[Public\] MysqlPasswd = \(missing\): required/.test(e.message),
  );
});

test('explainAccessDenied: appends the warning to an Access denied message only', () => {
  const denied = "10.0.0.1:20000: Access denied for user 'backup'@'10.0.0.2' (using password: YES)";
  const warning = "/x/dbbackup.20000.ini: [Public] MysqlPasswd contains an unquoted ';'";
  assert.equal(explainAccessDenied({ passwordWarning: warning }, denied), `${denied} (${warning})`);
  assert.equal(explainAccessDenied({ passwordWarning: undefined }, denied), denied);
  assert.equal(explainAccessDenied({ passwordWarning: warning }, 'connect ECONNREFUSED'), 'connect ECONNREFUSED');
});
