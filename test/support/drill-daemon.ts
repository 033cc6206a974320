// The real daemon with a stand-in for runRestore, for test/drill.test.ts: `node drill-daemon.js
// --agent-config <ini> <control-dir>`. The stand-in does what the test's control dir says
// (`mode`: ok, wrong, problem, slow), appends each request to `requests.jsonl`, and for ok/wrong/
// slow writes a little into the real scratch instances of the target file — a check table
// through the first spider node, a schema on every shard master — so the check and the wipe
// have real data to read and drop. The restore command itself is tested on its own.
import { appendFileSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { connect } from '../../src/db/connect.js';
import { runDaemon } from '../../src/daemon/daemon.js';
import type { RunRestore } from '../../src/daemon/drill.js';
import type { RestoreOutcome } from '../../src/recovery/job.js';

interface Target {
  spider: { host: string; port: number }[];
  shards: Record<string, { host: string; port: number }>;
  user: string;
  password_file: string;
}

const [flag, agentConfigFile, control] = process.argv.slice(2);
if (flag !== '--agent-config' || agentConfigFile === undefined || control === undefined)
  throw new Error('usage: drill-daemon.js --agent-config <ini> <control-dir>');

let n = 0;
const runRestore: RunRestore = async (_config, req, onEvent) => {
  appendFileSync(join(control, 'requests.jsonl'), `${JSON.stringify(req)}\n`);
  const mode = readFileSync(join(control, 'mode'), 'utf8').trim();
  if (mode === 'problem') return { dryRun: false, problems: ['shard 0: object c1/backups/b1/x is corrupt'], plan: [] };
  const restoreId = `r-20261205-0600${String(++n).padStart(2, '0')}`;
  onEvent?.({ kind: 'planned', restoreId, backupId: 'b1', point: 'auto-1', tasks: 2 });
  const t = JSON.parse(readFileSync(req.targetFile, 'utf8')) as Target;
  const password = readFileSync(resolve(dirname(req.targetFile), t.password_file), 'utf8').trim();
  const login = { user: t.user, password };
  const spider = await connect({ ...(t.spider[0] as Target['spider'][0]), ...login });
  try {
    await spider.query('CREATE DATABASE IF NOT EXISTS drillcheck');
    await spider.query('CREATE TABLE IF NOT EXISTS drillcheck.t (v INT)');
    await spider.query('DELETE FROM drillcheck.t');
    await spider.query('INSERT INTO drillcheck.t VALUES (?)', [mode === 'wrong' ? 999 : 1000]);
  } finally {
    await spider.close();
  }
  for (const s of Object.values(t.shards)) {
    const c = await connect({ ...s, ...login });
    try {
      await c.query('CREATE DATABASE IF NOT EXISTS drillshard');
    } finally {
      await c.close();
    }
  }
  if (mode === 'slow') await delay(7000);
  onEvent?.({ kind: 'routed', spiders: t.spider });
  const outcome: RestoreOutcome = {
    restoreId,
    dryRun: false,
    problems: [],
    plan: [],
    result: { format: 1, restoreId, outcome: 'done', endedAt: new Date().toISOString(), totalMs: 1, phaseMs: {}, failed: [], routed: true },
  };
  return outcome;
};

const code = await runDaemon({ agentConfigFile, runRestore });
process.exit(code);
