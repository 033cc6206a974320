// target.json of `spiderbackup restore` (every error names the file, the field and the value; the
// passwords stay in their files), the tasks and routes made from it, and the contract's pure
// taskProgress as the command reads it.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { LOST_AFTER_MS, taskProgress, type RestoreTaskState } from '../../src/recovery/job.js';
import { planLine, routesOf, shardMismatch, shardTasks, spiderTasks } from '../../src/recovery/plan-tasks.js';
import { phaseTimes } from '../../src/recovery/follow.js';
import { parseTargetFile, readPasswordFile, readTargetFile, targetInstances } from '../../src/recovery/target-file.js';
import { routingStatements } from '../../src/sql/restore-target.js';
import { eventLine } from '../../src/cli/commands/restore.js';

const dir = mkdtempSync(join(tmpdir(), 'sb-target-file-'));
const pw = join(dir, 'pw');
writeFileSync(pw, 'Secret-1\nignored\n');
const replPw = join(dir, 'repl.pw');
writeFileSync(replPw, 'Repl-2\n');
const FILE = join(dir, 'target.json');
after(() => rmSync(dir, { recursive: true, force: true }));

const good = () => ({
  spider: [{ host: '10.0.0.1', port: 25000 }],
  tdbctl: { host: '10.0.0.1', port: 26000 },
  shards: {
    '1': { host: '10.0.1.2', port: 20000, replicas: [{ host: '10.0.1.3', port: 20000 }] },
    '0': { host: '10.0.1.1', port: 20000, user: 'own', password_file: 'repl.pw' },
  },
  user: 'admin',
  password_file: pw,
  replication: { user: 'repl', password_file: replPw },
});

/** The ConfigError message of parsing `doc`. */
function errorOf(doc: unknown): string {
  try {
    parseTargetFile(FILE, doc);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe('target.json', () => {
  test('a good file: shards by ShardValue, logins per instance or from the top, paths resolved, scratch false', () => {
    const t = parseTargetFile(FILE, good());
    assert.deepEqual(
      t.shards.map((s) => s.shardValue),
      [0, 1],
    );
    assert.deepEqual(t.shards[0]!.master, { host: '10.0.1.1', port: 20000, user: 'own', passwordFile: replPw });
    assert.deepEqual(t.shards[1]!.replicas, [{ host: '10.0.1.3', port: 20000, user: 'admin', passwordFile: pw }]);
    assert.equal(t.scratch, false);
    assert.equal(t.tdbctl?.port, 26000);
    assert.equal(targetInstances(t).length, 4);
    assert.equal(readPasswordFile(pw), 'Secret-1');
  });

  test('each error names the file, the field and the value', () => {
    const cases: [unknown, RegExp][] = [
      [[], /: \(top level\) = \[\]: expected an object/],
      [{ ...good(), spidr: [] }, /: spidr = \[\]: unknown field/],
      [{ ...good(), spider: [] }, /: spider = \[\]: expected a non-empty list/],
      [{ ...good(), spider: [{ host: '', port: 1 }] }, /: spider\[0\]\.host = "": expected a non-empty string/],
      [{ ...good(), spider: [{ host: 'h', port: '25000' }] }, /: spider\[0\]\.port = "25000": expected a port number/],
      [{ ...good(), spider: [{ host: 'h', port: 1, pasword_file: 'x' }] }, /: spider\[0\]\.pasword_file = "x": unknown field/],
      [{ ...good(), shards: { a: { host: 'h', port: 1 } } }, /: shards\."a" = "a": a shard key is a ShardValue/],
      [{ ...good(), shards: { '-1': { host: 'h', port: 1 } } }, /: shards\."-1" = "-1": a shard key is a ShardValue/],
      [{ ...good(), shards: {} }, /: shards = \{\}: expected an object of the new shards/],
      [{ ...good(), password_file: 'nope.pw' }, /: password_file = "nope\.pw": cannot be read \(ENOENT\)/],
      [{ ...good(), user: undefined }, /: spider\[0\]\.user = \(missing\): required \(here or at the top level\)/],
      [{ ...good(), replication: undefined }, /: replication = \(missing\): required: shard 1 has replicas/],
      [{ ...good(), replication: { user: 'r' } }, /: replication\.password_file = \(missing\): required/],
      [{ ...good(), scratch: 'yes' }, /: scratch = "yes": expected true or false/],
      [{ ...good(), spider: [{ host: '10.0.1.1', port: 20000 }] }, /: shards\."0" = "10\.0\.1\.1:20000": the same instance as spider\[0\]/],
      [{ ...good(), tdbctl: 5 }, /: tdbctl = 5: expected an object/],
    ];
    for (const [doc, re] of cases) {
      const msg = errorOf(doc);
      assert.ok(msg.startsWith(`${FILE}: `), msg);
      assert.match(msg, re);
      assert.ok(!msg.includes('Secret-1') && !msg.includes('Repl-2'), msg);
    }
  });

  test('a file that does not parse or is not there is named', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"spider": [');
    assert.throws(
      () => readTargetFile(bad),
      (e: Error) => e instanceof ConfigError && e.message.startsWith(`${bad}: not valid JSON`),
    );
    assert.throws(
      () => readTargetFile(join(dir, 'none.json')),
      (e: Error) => e instanceof ConfigError && /none\.json: cannot read the target file: ENOENT/.test(e.message),
    );
  });
});

describe('tasks and routes from the target file', () => {
  const t = parseTargetFile(FILE, good());
  const source = { host: 's', port: 1, backupId: 'b1', serverName: 'SPT0', tool: 'mariadb-dump', manifestSha256: 'x' };
  const shards = [0, 1].map((n) => ({
    shardValue: n,
    serverName: `SPT${n}`,
    source: { ...source, serverName: `SPT${n}` },
    bytes: 2048,
    fromGtid: `0-1-${n}`,
    toGtid: `0-1-${n + 10}`,
    runs: [],
  }));

  test('a master and its replicas per shard; the replica replicates from the new master with the replication login', () => {
    const tasks = shardTasks('r-20260101-000000', t, shards);
    assert.deepEqual(
      tasks.map((x) => `${x.role} ${x.target.host} ${x.shard} ${x.attempt}`),
      ['master 10.0.1.1 0 1', 'master 10.0.1.2 1 1', 'replica 10.0.1.3 1 1'],
    );
    assert.deepEqual(tasks[2]!.replicateFrom, { host: '10.0.1.2', port: 20000, user: 'repl', passwordFile: replPw });
    assert.equal(tasks[2]!.toGtid, '0-1-11');
    assert.match(
      planLine(tasks[2]!, 2048),
      /^replica 10\.0\.1\.3:20000 shard 1: from SPT1 s:1 backup b1 \(mariadb-dump, 2\.0 KiB\); after GTID 0-1-1 nothing to replay up to GTID 0-1-11; then replicates from 10\.0\.1\.2:20000 as repl$/,
    );
  });

  test('routes: SPT<n> to the new master, SPT_SLAVE<n> to its replica, SPIDER<k> to the new spider nodes; never a password', () => {
    const routes = routesOf(t);
    assert.deepEqual(
      routes.map((r) => `${r.name} ${r.wrapper} ${r.host}:${r.port} ${r.user}`),
      [
        'SPT0 mysql 10.0.1.1:20000 own',
        'SPT1 mysql 10.0.1.2:20000 admin',
        'SPT_SLAVE1 mysql_slave 10.0.1.3:20000 admin',
        'SPIDER0 SPIDER 10.0.0.1:25000 admin',
      ],
    );
    const spider = spiderTasks('r-1', t, { source: { ...source, serverName: 'SPIDER' }, bytes: 1 });
    assert.equal(spider.length, 1);
    assert.deepEqual(spider[0]!.routes, routes);
    assert.ok(!JSON.stringify(spider).includes('Secret-1'));
    const text = routingStatements(routes, (r) => `/etc/${r.name}.pw`);
    assert.equal(
      text[0],
      "REPLACE INTO mysql.servers (Server_name, Host, Port, Username, Password, Wrapper) VALUES ('SPT0', '10.0.1.1', 20000, 'own', '<the password in /etc/SPT0.pw>', 'mysql');",
    );
    assert.equal(text.at(-1), 'TDBCTL FLUSH ROUTING;');
  });

  test('a shard of the source without a target, and a target shard the source lacks, are named', () => {
    const lines = shardMismatch(t, [
      { shardValue: 0, serverName: 'SPT0' },
      { shardValue: 2, serverName: 'SPT2' },
    ]);
    assert.deepEqual(lines, [
      `${FILE}: shards: no target for shard 2 (SPT2)`,
      `${FILE}: shards."1": the source has no shard 1 (its shards: 0, 2)`,
    ]);
  });
});

describe('taskProgress and the time per phase', () => {
  const state = (over: Partial<RestoreTaskState>): RestoreTaskState => ({
    format: 1,
    restoreId: 'r-1',
    target: { host: 'h', port: 1 },
    attempt: 1,
    phase: 'fetch',
    phases: [],
    bytes: 0,
    agent: { host: 'h', pid: 1, version: 'x' },
    heartbeatAt: '2026-01-01T00:00:00Z',
    ...over,
  });

  test('waiting until claimed, failed when no agent claims it in time', () => {
    assert.deepEqual(taskProgress({ attempt: 1 }, undefined, 0, 59_000, 60_000), { kind: 'waiting' });
    const late = taskProgress({ attempt: 1 }, undefined, 0, 61_000, 60_000);
    assert.equal(late.kind, 'failed');
    assert.match((late as { error: string }).error, /no agent claimed it within 60 s/);
  });

  test('a state of an older attempt is stale: waiting for the new one', () => {
    assert.deepEqual(taskProgress({ attempt: 2 }, state({ attempt: 1, phase: 'failed', error: 'x' }), 0, 1000, 60_000), {
      kind: 'waiting',
    });
  });

  test('running, done, failed with its error, lost when the heartbeat stops', () => {
    assert.deepEqual(taskProgress({ attempt: 1 }, state({}), 0, 1000, 60_000), { kind: 'running' });
    assert.deepEqual(taskProgress({ attempt: 1 }, state({ phase: 'done' }), 0, 10 * LOST_AFTER_MS, 60_000), { kind: 'done' });
    assert.deepEqual(taskProgress({ attempt: 1 }, state({ phase: 'failed', error: 'object x missing' }), 0, 1000, 60_000), {
      kind: 'failed',
      error: 'object x missing',
    });
    const lost = taskProgress({ attempt: 1 }, state({ phase: 'replay' }), 0, LOST_AFTER_MS + 1, 60_000);
    assert.equal(lost.kind, 'failed');
    assert.match((lost as { error: string }).error, /stopped reporting in phase replay/);
  });

  test('phaseTimes sums each phase over the tasks, a running one up to now', () => {
    const a = state({
      phases: [
        { phase: 'fetch', startedAt: '2026-01-01T00:00:00.000Z', endedAt: '2026-01-01T00:00:02.000Z' },
        { phase: 'load', startedAt: '2026-01-01T00:00:02.000Z', endedAt: '2026-01-01T00:00:05.000Z' },
        { phase: 'done', startedAt: '2026-01-01T00:00:05.000Z' },
      ],
    });
    const b = state({ phases: [{ phase: 'fetch', startedAt: '2026-01-01T00:00:00.000Z' }] });
    assert.deepEqual(phaseTimes([a, b], Date.parse('2026-01-01T00:00:01.000Z')), { fetch: 3000, load: 3000 });
  });
});

describe("the restore command's progress lines", () => {
  test('target, role, shard, phase, bytes, time; the GTID when done, the error when failed', () => {
    const target = { host: '10.0.1.1', port: 20000 };
    const base = { kind: 'phase', target, role: 'master', shard: 0, bytes: 3 * 1024 * 1024, ms: 4200 } as const;
    assert.equal(eventLine({ ...base, phase: 'load' }), '10.0.1.1:20000 master shard 0: load 3.0 MiB 4.2 s');
    assert.equal(eventLine({ ...base, phase: 'done', gtid: '0-1-9' }), '10.0.1.1:20000 master shard 0: done 3.0 MiB 4.2 s at GTID 0-1-9');
    assert.equal(
      eventLine({ ...base, role: 'spider', phase: 'failed', error: 'route SPT0: refused' }),
      '10.0.1.1:20000 spider: failed 3.0 MiB 4.2 s: route SPT0: refused',
    );
    assert.equal(eventLine({ kind: 'routed', spiders: [target] }), 'routed: 10.0.1.1:20000 now route to the restored shards');
    assert.equal(eventLine({ kind: 'note', line: 'waiting' }), 'waiting');
  });
});
