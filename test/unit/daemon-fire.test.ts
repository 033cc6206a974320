// What a cron fire does, with `schedule` replaced: paused, no spider instance, not primary,
// scheduled, failed. (The real schedule against a cluster is in test/daemon.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadAgentConfig } from '../../src/config/agent.js';
import { fireSchedule } from '../../src/daemon/fire.js';
import type { runSchedule } from '../../src/cluster/schedule.js';
import { NotPrimaryError } from '../../src/cluster/session.js';

const logger = pino({ level: 'silent' });

function host(ports: number[]) {
  const dir = mkdtempSync(join(tmpdir(), 'sb-fire-'));
  for (const port of ports) {
    writeFileSync(
      join(dir, `dbbackup.${port}.ini`),
      `[Public]\nMysqlHost = 127.0.0.1\nMysqlPort = ${port}\nMysqlUser = u\nMysqlPasswd = p\nMysqlRole = ` +
        `${port >= 25000 ? 'spider_master' : 'master'}\n`,
    );
  }
  const agent = join(dir, 'spiderbackup.ini');
  writeFileSync(agent, `[agent]\nconfig_dir = ${dir}\nstate_dir = ${dir}/state\n[schedule]\ncron = 0 3 * * *\n[metrics]\nlisten = off\n`);
  return loadAgentConfig(agent);
}

const never: typeof runSchedule = async () => {
  throw new Error('must not be called');
};

test('paused: nothing is scheduled', async () => {
  const r = await fireSchedule(
    { config: host([25000]), logger, pause: { until: '2999-01-01T00:00:00Z', reason: 'x', since: '', by: undefined }, schedule: never },
    new Date(),
  );
  assert.equal(r.result, 'paused');
});

test('a host without a spider instance config never schedules', async () => {
  const r = await fireSchedule({ config: host([20000, 20001]), logger, pause: undefined, schedule: never }, new Date());
  assert.equal(r.result, 'not-spider');
});

test('on a spider host: not-primary, scheduled and failures are told apart', async () => {
  const config = host([20000, 25000]);
  const notPrimary: typeof runSchedule = async () => {
    throw new NotPrimaryError('127.0.0.1:25000');
  };
  assert.equal((await fireSchedule({ config, logger, pause: undefined, schedule: notPrimary }, new Date())).result, 'not-primary');
  const ok = (async () => ({ backupId: 'B-1', tasks: 4 })) as unknown as typeof runSchedule;
  const r = await fireSchedule({ config, logger, pause: undefined, schedule: ok }, new Date());
  assert.deepEqual([r.result, r.backupId], ['scheduled', 'B-1']);
  const boom: typeof runSchedule = async () => {
    throw new Error('tdbctl unreachable');
  };
  const e = await fireSchedule({ config, logger, pause: undefined, schedule: boom }, new Date());
  assert.deepEqual([e.result, e.error], ['error', 'tdbctl unreachable']);
});
