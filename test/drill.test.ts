// Issue 20 item 6 on real instances: the daemon of the primary spider node's host runs the restore
// drill on a 3-second [drill] cron with a stand-in for runRestore (test/support/drill-daemon.ts)
// that writes into a real set of scratch instances (a second cluster). A good drill exports its
// metrics (promtool accepts them), shows on `status` and in the log, and leaves the scratch
// instances wiped; a drill whose check_sql returns another value, or whose restore reports a
// problem, or whose target file does not say "scratch": true, fails — in the metrics, the status
// and the log. A slot that comes while a drill runs is skipped and logged; away from the primary
// nothing is drilled.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_PASSWORD, ADMIN_USER, startCluster, type Cluster } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';
import { DaemonProcess, freePort, type LogLine } from './support/daemon.js';
import { parseExposition, promtool, valueOf } from './support/prom.js';
import { waitFor } from './support/workspace.js';

const DRILL_DAEMON = join(dirname(fileURLToPath(import.meta.url)), 'support/drill-daemon.js');

let source: TestCluster<'ws'>;
let scratch: Cluster;
let ws: ClusterWorkspace;
let metricsPort: number;
let daemon: DaemonProcess | undefined;
let targetFile: string;

const mode = (m: 'ok' | 'wrong' | 'problem' | 'slow') => writeFileSync(join(ws.dir, 'mode'), m);

function writeTarget(scratchFlag: boolean): void {
  const master = scratch.masters[0];
  assert.ok(master);
  writeFileSync(join(ws.dir, 'drill-pw'), `${ADMIN_PASSWORD}\n`);
  writeFileSync(
    targetFile,
    JSON.stringify({
      spider: [{ host: scratch.spider.host, port: scratch.spider.port }],
      shards: { '0': { host: master.host, port: master.port } },
      user: ADMIN_USER,
      password_file: 'drill-pw',
      scratch: scratchFlag,
    }),
  );
}

before(async () => {
  metricsPort = await freePort();
  scratch = await startCluster({ shards: 1, slaves: [], spiders: 1, createTables: false, hosts: () => '127.0.0.3' });
  source = await setUpCluster({
    shards: 1,
    slaves: [],
    tdbctl: true,
    workspaces: { ws: { serves: ['spider0'] } },
  });
  ({ ws } = source.workspaces);
  targetFile = join(ws.dir, 'drill-target.json');
  ws.writeAgentConfig({
    metrics: { listen: `127.0.0.1:${metricsPort}` },
    drill: { cron: '*/3 * * * * *', target: targetFile, check_sql: 'SELECT v FROM drillcheck.t', expect: '1000' },
  });
  writeTarget(true);
  // The agent's own schema on a scratch instance stays through a wipe.
  await scratch.exec(scratch.masters[0] as NonNullable<(typeof scratch.masters)[0]>, 'CREATE DATABASE IF NOT EXISTS infodba_schema');
});

after(async () => {
  if (daemon) {
    daemon.signal('SIGTERM');
    await daemon.exited;
    await daemon.dispose();
  }
  await source?.close();
  await scratch?.close();
});

async function scrape(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The next drill's log line after the `seen` lines already looked at. */
function nextDrill(d: DaemonProcess, seen: number, re: RegExp): Promise<LogLine> {
  return d.waitLog((l) => d.lines.indexOf(l) >= seen && re.test(l.msg), 60_000);
}

const schemasOn = async (c: Cluster, inst: Cluster['spider']) =>
  (await c.query<{ n: string }>(inst, 'SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA')).map((r) => r.n).sort();

describe('restore drill', { timeout: 600_000 }, () => {
  test('a good drill exports its metrics, shows on status and in the log, and wipes the scratch instances', async () => {
    mode('ok');
    daemon = new DaemonProcess(ws, [process.execPath, DRILL_DAEMON, '--agent-config', ws.agentIni, ws.dir]);
    const d = daemon;
    await d.ready();
    // Before any drill: the failures counter at 0, no gauges yet.
    const first = parseExposition(await scrape());
    assert.equal(valueOf(first, 'spiderbackup_restore_drill_failures_total'), 0);
    const line = await nextDrill(d, 0, /^restore drill r-\S+ succeeded in /);
    assert.match(line.msg, /\(check_sql: 1000\)$/);
    assert.equal(line.outcome, 'success');
    assert.match(String(line.restoreId), /^r-20261205-0600\d\d$/);
    assert.equal(typeof line.durationMs, 'number');

    // What the drill asked: the newest backup (none named) to the newest point at or before the primary's clock, scratch required.
    const req = JSON.parse(readFileSync(join(ws.dir, 'requests.jsonl'), 'utf8').split('\n')[0] as string) as Record<string, unknown>;
    assert.equal(req.targetFile, targetFile);
    assert.equal(req.requireScratch, true);
    assert.equal(req.backupId, undefined);
    assert.match(String(req.toTime), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/);

    const text = await scrape();
    const r = await promtool(['check', 'metrics'], text);
    assert.equal(r.code, 0, `promtool check metrics:\n${r.output}`);
    const e = parseExposition(text);
    assert.equal(valueOf(e, 'spiderbackup_restore_drill_failures_total'), 0);
    assert.equal(valueOf(e, 'spiderbackup_restore_drill_last_run_success'), 1);
    const lastSuccess = valueOf(e, 'spiderbackup_restore_drill_last_success_timestamp_seconds');
    assert.ok(Math.abs(lastSuccess - Date.now() / 1000) < 600, String(lastSuccess));
    assert.ok(valueOf(e, 'spiderbackup_restore_drill_duration_seconds') >= 0);
    assert.equal(valueOf(e, 'spiderbackup_restore_drill_last_run_timestamp_seconds'), lastSuccess);

    // Wiped (keep off): the drill's schemas are gone, the system ones and infodba_schema stay; the source is untouched.
    await waitFor('the scratch instances wiped', async () => !(await schemasOn(scratch, scratch.spider)).includes('drillcheck'));
    const master = scratch.masters[0] as Cluster['spider'];
    assert.deepEqual(await schemasOn(scratch, master), ['infodba_schema', 'information_schema', 'mysql', 'performance_schema', 'sys']);
    assert.ok((await schemasOn(source, source.spider)).includes('infodba_schema'));

    const st = await ws.cli('status');
    const drillLine = st.stdout.split('\n').find((l) => l.startsWith('Drill:'));
    assert.match(drillLine ?? st.stdout, /^Drill: +(?:running since \S+; )?last \S+ .*succeeded in .* \(r-20261205-0600\d\d\); next \S+Z$/);
  });

  test('a check_sql mismatch, a problem of the restore and a target without "scratch": true fail: metrics, status, log', async () => {
    const d = daemon as DaemonProcess;
    const before = parseExposition(await scrape());
    const lastSuccess = valueOf(before, 'spiderbackup_restore_drill_last_success_timestamp_seconds');
    let seen = d.lines.length;

    mode('wrong');
    const wrong = await nextDrill(d, seen, /^restore drill r-\S+ FAILED after /);
    assert.match(wrong.msg, /: check_sql returned "999", expected "1000" \(SELECT v FROM drillcheck\.t\)$/);
    assert.equal(wrong.outcome, 'failed');
    let e = parseExposition(await scrape());
    assert.ok(valueOf(e, 'spiderbackup_restore_drill_failures_total') >= 1);
    assert.equal(valueOf(e, 'spiderbackup_restore_drill_last_run_success'), 0);
    assert.equal(valueOf(e, 'spiderbackup_restore_drill_last_success_timestamp_seconds'), lastSuccess, 'the last success stays');
    let st = await ws.cli('status');
    assert.match(
      st.stdout,
      /^Drill: +(?:running since \S+; )?last \S+ .*FAILED after .*: check_sql returned "999", expected "1000".*; last success \S+; next /m,
    );

    seen = d.lines.length;
    mode('problem');
    const problem = await nextDrill(d, seen, /^restore drill FAILED after /);
    assert.match(problem.msg, /: shard 0: object c1\/backups\/b1\/x is corrupt$/);

    seen = d.lines.length;
    writeTarget(false);
    const notScratch = await nextDrill(d, seen, /^restore drill FAILED after /);
    assert.ok(notScratch.msg.includes(`${targetFile}: scratch = false: a drill target must say "scratch": true`), notScratch.msg);
    e = parseExposition(await scrape());
    assert.ok(valueOf(e, 'spiderbackup_restore_drill_failures_total') >= 3);
    assert.equal(valueOf(e, 'spiderbackup_restore_drill_last_run_success'), 0);
    st = await ws.cli('status');
    assert.match(st.stdout, /^Drill: .*FAILED after .*scratch = false/m);
    assert.match(st.stdout, /^Last error: +\S+: restore drill: /m);
    writeTarget(true);
    mode('ok');
    seen = d.lines.length;
    await nextDrill(d, seen, /^restore drill r-\S+ succeeded in /);
    e = parseExposition(await scrape());
    assert.equal(valueOf(e, 'spiderbackup_restore_drill_last_run_success'), 1);
    assert.ok(valueOf(e, 'spiderbackup_restore_drill_last_success_timestamp_seconds') > lastSuccess);
  });

  test('one drill at a time: a slot while one runs is skipped and logged; away from the primary, none', async () => {
    const d = daemon as DaemonProcess;
    let seen = d.lines.length;
    mode('slow'); // 7 s a drill, slots every 3 s
    const skipped = await nextDrill(d, seen, /^restore drill slot \S+ skipped: the drill started \S+ \(.* ago\) still runs$/);
    assert.equal(skipped.level, 40);
    await nextDrill(d, seen, /^restore drill r-\S+ succeeded in /);
    mode('ok');

    seen = d.lines.length;
    source.tdbctl?.setPrimary(false);
    const requests = () => readFileSync(join(ws.dir, 'requests.jsonl'), 'utf8').split('\n').filter(Boolean).length;
    await nextDrill(d, seen, /^no restore drill while this spider node is not the primary/);
    const n = requests();
    // Two more slots (3 s apart) pass without a drill, and it is said once (an absence: waited for, not timed).
    await new Promise((r) => setTimeout(r, 7000));
    assert.equal(requests(), n);
    assert.equal(d.lines.filter((l) => /^no restore drill while/.test(l.msg)).length, 1);
    const kept = parseExposition(await scrape());

    d.signal('SIGTERM');
    const exit = await d.exited;
    await d.dispose();
    daemon = undefined;
    assert.equal(exit.code, 0, d.stderr);
    assert.ok(existsSync(join(ws.stateDir, 'drill.json')));

    // After a restart (still not the primary: no drill), the gauges come back from drill.json; the counter starts at 0 again.
    const again = new DaemonProcess(ws, [process.execPath, DRILL_DAEMON, '--agent-config', ws.agentIni, ws.dir]);
    daemon = again;
    await again.ready();
    const e = parseExposition(await scrape());
    for (const name of [
      'spiderbackup_restore_drill_last_success_timestamp_seconds',
      'spiderbackup_restore_drill_last_run_timestamp_seconds',
      'spiderbackup_restore_drill_last_run_success',
      'spiderbackup_restore_drill_duration_seconds',
    ])
      assert.equal(valueOf(e, name), valueOf(kept, name), name);
    assert.equal(valueOf(e, 'spiderbackup_restore_drill_failures_total'), 0);
    const st = await ws.cli('status');
    assert.match(st.stdout, /^Drill: +(?:running since \S+; )?last \S+ .*succeeded in .*; next \S+Z$/m);
    source.tdbctl?.setPrimary(true);
  });
});
