// The example alert rules the README shows are a real file (config/prometheus-alerts.yml) that
// Prometheus' own checker accepts, and the README names each of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promtool } from './support/prom.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const rules = join(root, 'config/prometheus-alerts.yml');

test('promtool check rules accepts config/prometheus-alerts.yml', async () => {
  const r = await promtool(['check', 'rules', rules]);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /SUCCESS: 5 rules found/);
});

test('the README shows the rules of the file', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const text = readFileSync(rules, 'utf8');
  const names = [...text.matchAll(/- alert: (\w+)/g)].map((m) => m[1] as string);
  assert.ok(names.includes('SpiderbackupNoSuccessfulBackup') && names.includes('SpiderbackupAgentDown'));
  for (const n of names) assert.ok(readme.includes(n), `README does not mention ${n}`);
  for (const expr of [...text.matchAll(/expr: (.+)/g)].map((m) => m[1] as string)) assert.ok(readme.includes(expr), `README lacks ${expr}`);
});
