// Rolling the agent out beside the old tool, on the real harness: the daemon reads mysql-crond's
// own job list (a stand-in executable that prints bk-dbm's table) and warns once per change while
// the old jobs are still registered; tdbctl's own drop-in is recognised and never served.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type TestCluster } from './support/cluster.js';
import type { Workspace } from './support/workspace.js';
import { DaemonProcess } from './support/daemon.js';

let cluster: TestCluster;

before(async () => {
  cluster = await setUpCluster({ shards: 1, slaves: [], tdbctl: true });
});

after(() => cluster?.close());

const ROW = '+----+-----------------------+-------------+----------------------------------+--------+---------------------------+';
const table = (rows: [id: string, name: string, schedule: string, enable: boolean, next: string][]): string =>
  [
    ROW,
    '| ID |        JobName        |  Schedule   |             Command              | Enable |         NextTime          |',
    ROW,
    ...rows.flatMap(([id, name, schedule, enable, next]) => [
      `| ${id.padStart(2)} | ${name.padEnd(21)} | ${schedule.padEnd(11)} | /home/mysql/dbbackup-go/dbbackup | ${String(enable).padEnd(6)} | ${next.padEnd(25)} |`,
      ROW,
    ]),
    '',
  ].join('\n');

/** A stand-in mysql-crond: answers only `list -c runtime.yaml` run from its own directory, and counts the calls. */
function standIn(dir: string): { binary: string; list: (text: string) => void; calls: () => number } {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'runtime.yaml'), 'ip: 127.0.0.1\nport: 9999\n');
  const binary = join(dir, 'mysql-crond');
  writeFileSync(
    binary,
    [
      '#!/bin/sh',
      '[ "$*" = "list -c runtime.yaml" ] || { echo "unexpected arguments: $*" >&2; exit 2; }',
      '[ -f runtime.yaml ] || { echo "no runtime.yaml in $(pwd)" >&2; exit 2; }',
      'echo list >> calls.log',
      'cat list.txt',
      '',
    ].join('\n'),
  );
  chmodSync(binary, 0o755);
  const list = (text: string) => writeFileSync(join(dir, 'list.txt'), text);
  const calls = () => {
    try {
      return readFileSync(join(dir, 'calls.log'), 'utf8').split('\n').filter(Boolean).length;
    } catch {
      return 0;
    }
  };
  return { binary, list, calls };
}

describe('rollout beside mysql-crond', () => {
  let ws: Workspace;
  let d: DaemonProcess | undefined;

  afterEach(async () => {
    await d?.dispose();
    d = undefined;
    ws?.close();
  });

  test('the old jobs still registered are warned about once per change (log and status), from a look every few minutes, not every tick', async () => {
    ws = cluster.workspace({ serves: ['master0'] });
    const crond = standIn(join(ws.dir, 'mysql-crond'));
    const future = new Date(Date.now() + 3_600_000).toISOString();
    crond.list(
      table([
        ['5', 'mysql-monitor-3306', '@every 1m', true, future],
        ['7', 'spiderbackup-check', '*/1 * * * *', true, future],
        ['-1', 'spiderbackup-schedule', '0 3 * * *', false, future],
      ]),
    );
    ws.writeAgentConfig({ migration: { mysql_crond: crond.binary } });
    d = new DaemonProcess(ws);
    await d.ready();
    await d.waitLog(/mysql-crond job spiderbackup-schedule is only paused/);
    await d.ticks(4);
    const warned = (re: RegExp) => d?.lines.filter((l) => re.test(l.msg)).length;
    assert.equal(warned(/mysql-crond job spiderbackup-check is still enabled/), 1);
    assert.equal(warned(/mysql-crond job spiderbackup-schedule is only paused/), 1);
    assert.equal(crond.calls(), 1, 'one look at start, not one per tick');

    const status = await ws.cli('status');
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stdout,
      /mysql-crond: +mysql-crond job spiderbackup-check is still enabled: .* \.\/mysql-crond delJob --name spiderbackup-check -c runtime\.yaml/,
    );
    assert.match(status.stdout, new RegExp(`only paused: it comes back at ${future.replace(/[.+]/g, '\\$&')}`));

    // Deleted from mysql-crond: a reload looks again at once; said once, and status is clean.
    crond.list(table([['5', 'mysql-monitor-3306', '@every 1m', true, future]]));
    d.signal('SIGHUP');
    await d.waitLog("mysql-crond: the old tool's jobs are gone from this host");
    await d.ticks(1);
    const clean = await ws.cli('status');
    assert.doesNotMatch(clean.stdout, /mysql-crond:/);

    // Output it does not know: said once, never a crash.
    crond.list('panic: runtime error: index out of range\n');
    d.signal('SIGHUP');
    await d.waitLog(/cannot read mysql-crond's job list/);
    d.signal('SIGHUP');
    await d.waitLog('configuration reloaded (SIGHUP)');
    await d.ticks(2);
    assert.equal(warned(/cannot read mysql-crond's job list/), 1);
    assert.equal(d.child.exitCode, null);
    const unread = await ws.cli('status');
    assert.match(unread.stdout, /mysql-crond: .*output is not the job table this agent knows/);
  });

  test('no mysql-crond binary: nothing to check, nothing said', async () => {
    ws = cluster.workspace({ config: { migration: { mysql_crond: '/nonexistent/mysql-crond' } }, serves: ['master0'] });
    d = new DaemonProcess(ws);
    await d.ready();
    await d.ticks(2);
    assert.deepEqual(
      d.lines.filter((l) => /mysql-crond/.test(l.msg) && l.level > 20),
      [],
    );
    const status = await ws.cli('status');
    assert.doesNotMatch(status.stdout, /mysql-crond/);
  });

  test("tdbctl's own drop-in (spider port + 1000) is not served as a shard; status says why; schedule still finds it", async () => {
    const [m0] = cluster.masters as [Instance];
    ws = cluster.workspace({ serves: [m0, cluster.spider] });
    const ctlPort = cluster.spider.port + 1000;
    // As the old tool writes it: the spider's role; only the port tells it apart.
    const ctlIni = cluster.writeInstanceIni(ws.confDir, cluster.tdbctlNode as Instance, { MysqlPort: String(ctlPort) });
    assert.match(ctlIni, new RegExp(`dbbackup\\.${ctlPort}\\.ini$`));
    d = new DaemonProcess(ws);
    await d.ready();
    await d.ticks(1);
    const s = await ws.cli('status', '--format', 'json');
    assert.equal(s.code, 0, s.stderr);
    const view = JSON.parse(s.stdout) as { instances: { port: number }[]; notServed: string[] };
    assert.deepEqual(
      view.instances.map((i) => i.port).sort((a, b) => a - b),
      [m0.port, cluster.spider.port].sort((a, b) => a - b),
    );
    assert.deepEqual(view.notServed, [
      `dbbackup.${ctlPort}.ini: tdbctl of the spider node ${cluster.spider.port}, not backed up by the agent`,
    ]);
    const text = await ws.cli('status');
    assert.match(text.stdout, new RegExp(`not served: dbbackup\\.${ctlPort}\\.ini: tdbctl of the spider node ${cluster.spider.port}`));

    // The spider-side commands still take the tdbctl address from that drop-in.
    await d.dispose();
    d = undefined;
    const r = await ws.cli('schedule', '--backup-id', 'rollout-1');
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /scheduled backup id rollout-1/);
  });
});
