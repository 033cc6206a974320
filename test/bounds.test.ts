// Every wait of a spider-side command is bounded (issue 17 item 6): a hung instance (SIGSTOP) fails
// its own statements within [schedule] statement_timeout and is named; it never keeps a command
// alive. Each stopped mariadbd is SIGCONTed in `finally`, whatever the test did.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type Cluster, type Instance } from '../src/sandbox/cluster.js';
import type { CliResult } from './support/workspace.js';
import { waitFor, Workspace } from './support/workspace.js';

let cluster: Cluster;
let ws: Workspace;
let spiderIni: string;

before(async () => {
  cluster = await startCluster({ shards: 2, slaves: [0], spiders: 2, tdbctl: true });
  ws = new Workspace({ schedule: { wait_interval: '300ms', unclaimed_after: '1h', max_failed_polls: '2', statement_timeout: '2s' } });
  spiderIni = cluster.writeInstanceIni(ws.confDir, cluster.spider);
});

after(async () => {
  await cluster?.close();
  ws?.close();
});

/** Runs `fn` with `inst`'s mariadbd stopped (SIGSTOP); it is always continued. */
async function whileHung<T>(inst: Instance, fn: () => Promise<T>): Promise<T> {
  const pid = cluster.pidOf(inst);
  assert.ok(pid !== undefined, `${inst.name} has a pid`);
  process.kill(pid, 'SIGSTOP');
  try {
    return await fn();
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

/** The command's result, or a failed assertion if it has not exited within `ms` (it would hang forever). */
async function exitsWithin(
  run: { result: Promise<CliResult>; child: { kill(s: NodeJS.Signals): void }; stdout(): string; stderr(): string },
  ms: number,
): Promise<CliResult> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), ms)));
  try {
    const r = await Promise.race([run.result, hung]);
    if (r === 'hung') {
      run.child.kill('SIGKILL');
      assert.fail(`the command did not exit within ${ms / 1000} s: ${run.stdout()}${run.stderr()}`);
    }
    return r;
  } finally {
    clearTimeout(timer);
  }
}

describe('every wait bounded', { timeout: 240_000 }, () => {
  test('schedule --wait: a replica hung after the first round is named in the poll errors and counted by max_failed_polls', async () => {
    const slave = cluster.slaves[0] as Instance;
    const run = ws.start(['schedule', '-c', spiderIni, '--backup-id', 'hung-wait', '--wait']);
    await waitFor('the first progress line', () => /hung-wait: \d+\/\d+ success/.test(run.stdout()), 60_000);
    const r = await whileHung(slave, () => exitsWithin(run, 90_000));
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(
      r.stdout,
      new RegExp(`poll error: SPT_SLAVE0 ${slave.host}:${slave.port}: .*no answer within 2.0 s \\(statement timeout\\)`),
    );
    assert.match(r.stdout + r.stderr, /gave up after too many failed polls/);
  });

  test('query, list, verify and restore-plan with a hung replica end, naming it', async () => {
    const slave = cluster.slaves[0] as Instance;
    await whileHung(slave, async () => {
      for (const args of [
        ['query', '--BackupId', 'hung-wait'],
        ['list'],
        ['verify', 'hung-wait'],
        ['restore-plan', 'hung-wait', '--to-point', 'hung-wait'],
        ['cancel', 'hung-wait'],
      ]) {
        const r = await exitsWithin(ws.start([...args, '-c', spiderIni]), 60_000);
        assert.match(r.stdout + r.stderr, new RegExp(`${slave.port}`), `${args[0]} names the hung replica: ${r.stdout}${r.stderr}`);
      }
    });
  });
});
