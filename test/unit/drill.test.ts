// The restore drill's pure parts with a fake clock: which cron slot starts a drill (one at a time,
// none while paused), when a drill failed (the restore's outcome, check_sql against expect), what
// is remembered across drills and restarts, what `status` and the metrics show of it, and what the
// drill refuses in its target file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { createMetrics } from '../../src/daemon/metrics.js';
import type { RestoreOutcome } from '../../src/recovery/job.js';
import {
  checkFailure,
  drillGauges,
  drillLogLine,
  drillRecord,
  drillStatusText,
  remember,
  restoreFailure,
  slotDecision,
} from '../../src/recovery/drill-model.js';
import { readDrillTarget } from '../../src/recovery/drill-target.js';
import { readDrillMemory, writeDrillMemory } from '../../src/state/drill-memory.js';
import { parseExposition, valueOf } from '../support/prom.js';

/** A clock the test moves by hand (graphile-worker's style): nothing here reads the real time. */
function fakeClock(start: string) {
  let ms = Date.parse(start);
  return {
    now: () => new Date(ms),
    advance(by: number) {
      ms += by;
    },
  };
}

const SEC = 1000;
const MIN = 60 * SEC;
const DAY = 24 * 60 * MIN;

test('slots: a drill starts when none runs; one that comes while one runs, or while paused, is skipped and said', () => {
  const clock = fakeClock('2026-12-05T06:00:00Z');
  assert.deepEqual(slotDecision(clock.now(), undefined, undefined, clock.now()), { run: true });
  const running = { since: clock.now() };
  clock.advance(5 * SEC);
  const skip = slotDecision(clock.now(), running, undefined, clock.now());
  assert.equal(skip.run, false);
  assert.ok(!skip.run && skip.level === 'warn');
  assert.equal(
    !skip.run && skip.why,
    'restore drill slot 2026-12-05T06:00:05.000Z skipped: the drill started 2026-12-05T06:00:00.000Z (5.0 s ago) still runs',
  );
  // Running beats paused: the overlap is what the operator must hear about.
  assert.ok(!slotDecision(clock.now(), running, 'this host is paused', clock.now()).run);
  const paused = slotDecision(clock.now(), undefined, 'the cluster is paused (upgrade, until 2026-12-06 00:00:00)', clock.now());
  assert.ok(!paused.run && paused.level === 'info');
  assert.match(!paused.run ? paused.why : '', /^restore drill slot 2026-12-05T06:00:05\.000Z skipped: the cluster is paused \(upgrade/);
});

const done = (over: Partial<NonNullable<RestoreOutcome['result']>> = {}): RestoreOutcome => ({
  restoreId: 'r-20261205-060000',
  dryRun: false,
  problems: [],
  plan: [],
  result: {
    format: 1,
    restoreId: 'r-20261205-060000',
    outcome: 'done',
    endedAt: '2026-12-05T06:14:00Z',
    totalMs: 840_000,
    phaseMs: {},
    failed: [],
    routed: true,
    ...over,
  },
});

test("the restore's outcome: done and routed succeeds; anything else fails, saying what", () => {
  assert.equal(restoreFailure(done()), undefined);
  assert.equal(
    restoreFailure({ dryRun: false, problems: ['the restore command is not built yet'], plan: [] }),
    'the restore command is not built yet',
  );
  assert.equal(
    restoreFailure({ dryRun: false, problems: ['10.0.0.9:20000 is not empty', 'x'], plan: [] }),
    '10.0.0.9:20000 is not empty; x',
  );
  assert.equal(restoreFailure({ dryRun: true, problems: [], plan: ['…'] }), 'the restore ran as a dry run');
  assert.equal(restoreFailure({ ...done(), result: undefined }), 'the restore reported no result');
  assert.equal(
    restoreFailure(
      done({ outcome: 'partial', routed: false, failed: [{ target: { host: '127.0.0.3', port: 20001 }, error: 'object corrupt: a/b' }] }),
    ),
    'the restore ended partial (127.0.0.3:20001: object corrupt: a/b), not routed',
  );
  assert.equal(restoreFailure(done({ routed: false })), 'the restore reached the point but the new spider node was not routed');
});

test('check_sql against expect', () => {
  const sql = 'SELECT SUM(balance) FROM bank.acct';
  assert.equal(checkFailure('1000', '1000', sql), undefined);
  assert.equal(checkFailure('1000', ' 1000 ', sql), undefined);
  assert.equal(checkFailure('7', undefined, sql), undefined);
  assert.equal(checkFailure(null, undefined, sql), undefined);
  assert.equal(checkFailure(undefined, undefined, sql), `check_sql returned no row (${sql})`);
  assert.equal(checkFailure('999', '1000', sql), `check_sql returned "999", expected "1000" (${sql})`);
  assert.equal(checkFailure(null, '1000', sql), `check_sql returned NULL, expected "1000" (${sql})`);
});

test('records: duration, outcome, the last success kept across a failure, the gauges and the log line', () => {
  const clock = fakeClock('2026-12-05T06:00:00Z');
  const s1 = clock.now();
  clock.advance(14 * MIN + 3 * SEC);
  const ok = drillRecord(s1, clock.now(), { restoreId: 'r-1', value: '1000' });
  assert.deepEqual(ok, {
    startedAt: '2026-12-05T06:00:00.000Z',
    endedAt: '2026-12-05T06:14:03.000Z',
    durationMs: 843_000,
    outcome: 'success',
    restoreId: 'r-1',
    value: '1000',
  });
  assert.equal(drillLogLine(ok), 'restore drill r-1 succeeded in 14m03s (check_sql: 1000)');
  let m = remember(undefined, ok);
  assert.equal(m.lastSuccessAt, ok.endedAt);
  assert.deepEqual(drillGauges(m), {
    lastRunS: Date.parse(ok.endedAt) / 1000,
    lastRunSuccess: 1,
    durationS: 843,
    lastSuccessS: Date.parse(ok.endedAt) / 1000,
  });

  clock.advance(7 * DAY);
  const s2 = clock.now();
  clock.advance(2 * MIN);
  const bad = drillRecord(s2, clock.now(), { restoreId: 'r-2', error: 'check_sql returned "999", expected "1000"' });
  assert.equal(bad.outcome, 'failed');
  assert.equal(drillLogLine(bad), 'restore drill r-2 FAILED after 2m00s: check_sql returned "999", expected "1000"');
  m = remember(m, bad);
  assert.equal(m.last, bad);
  assert.equal(m.lastSuccessAt, ok.endedAt, 'the last success stays');
  const g = drillGauges(m);
  assert.equal(g.lastRunSuccess, 0);
  assert.equal(g.durationS, 120);
  assert.equal(g.lastSuccessS, Date.parse(ok.endedAt) / 1000);
  // A refused restore has no id; an agent whose drills never succeeded shows 0 (the stale alert's input).
  const refused = drillRecord(clock.now(), clock.now(), { error: 'x' });
  assert.equal(drillLogLine(refused), 'restore drill FAILED after 0 ms: x');
  assert.equal(drillGauges(remember(undefined, refused)).lastSuccessS, 0);
});

test("status's Drill line: last run, outcome, duration, next run", () => {
  const clock = fakeClock('2026-12-05T06:00:00Z');
  const base = { cron: '0 6 * * 6', target: '/etc/t.json', keep: false, nextRun: '2026-12-12T06:00:00.000Z' };
  assert.equal(drillStatusText(base, clock.now()), 'no drill run yet; next 2026-12-12T06:00:00.000Z');
  const s = clock.now();
  clock.advance(14 * MIN);
  const ok = drillRecord(s, clock.now(), { restoreId: 'r-1' });
  clock.advance(MIN);
  assert.equal(
    drillStatusText({ ...base, last: ok, lastSuccessAt: ok.endedAt }, clock.now()),
    'last 2026-12-05T06:14:00.000Z (1m00s ago): succeeded in 14m00s (r-1); next 2026-12-12T06:00:00.000Z',
  );
  const bad = { ...drillRecord(s, clock.now(), { error: 'boom' }), wipeError: '127.0.0.3:20000: gone' };
  assert.equal(
    drillStatusText({ ...base, nextRun: undefined, runningSince: '2026-12-05T06:15:00.000Z', last: bad }, clock.now()),
    'running since 2026-12-05T06:15:00.000Z; last 2026-12-05T06:15:00.000Z: FAILED after 15m00s: boom; wipe failed: 127.0.0.3:20000: gone; ' +
      'never succeeded; cron 0 6 * * 6',
  );
  assert.equal(
    drillStatusText({ ...base, idle: 'this spider node is not the primary' }, clock.now()),
    'no drill run yet; idle: this spider node is not the primary; next 2026-12-12T06:00:00.000Z',
  );
});

test('the metrics: none without [drill]; the failures counter at 0 with it; the gauges once a drill ran', async () => {
  const metrics = createMetrics();
  const drillSamples = async () =>
    parseExposition(await metrics.registry.metrics())
      .samples.filter((x) => x.name.startsWith('spiderbackup_restore_drill_'))
      .map((x) => `${x.name} ${x.value}`)
      .sort();
  metrics.drill(false, undefined);
  assert.deepEqual(await drillSamples(), []);
  metrics.drill(true, undefined);
  assert.deepEqual(await drillSamples(), ['spiderbackup_restore_drill_failures_total 0']);
  metrics.drillEnded({ lastRunS: 2000, lastRunSuccess: 0, durationS: 12.5, lastSuccessS: 0 }, true);
  const e = parseExposition(await metrics.registry.metrics());
  assert.equal(valueOf(e, 'spiderbackup_restore_drill_failures_total'), 1);
  assert.equal(valueOf(e, 'spiderbackup_restore_drill_last_run_success'), 0);
  assert.equal(valueOf(e, 'spiderbackup_restore_drill_duration_seconds'), 12.5);
  assert.equal(valueOf(e, 'spiderbackup_restore_drill_last_success_timestamp_seconds'), 0);
  assert.equal(valueOf(e, 'spiderbackup_restore_drill_last_run_timestamp_seconds'), 2000);
  metrics.drill(true, { lastRunS: 3000, lastRunSuccess: 1, durationS: 3, lastSuccessS: 3000 });
  assert.equal(
    valueOf(parseExposition(await metrics.registry.metrics()), 'spiderbackup_restore_drill_last_success_timestamp_seconds'),
    3000,
  );
  metrics.drill(false, undefined);
  assert.deepEqual(await drillSamples(), []);
});

test('drill.json: written and read back; a damaged one is an error naming it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-drill-'));
  try {
    assert.equal(readDrillMemory(dir), undefined);
    const rec = drillRecord(new Date(0), new Date(1000), { restoreId: 'r-1' });
    writeDrillMemory(dir, remember(undefined, rec));
    assert.deepEqual(readDrillMemory(dir), { format: 1, last: rec, lastSuccessAt: rec.endedAt });
    writeFileSync(join(dir, 'drill.json'), '{"format": 1}');
    assert.throws(() => readDrillMemory(dir), { message: `${join(dir, 'drill.json')}: not a drill record (format 1)` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the target file: "scratch": true is required, naming the file; logins per instance or at the top', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-drill-'));
  try {
    writeFileSync(join(dir, 'pw'), 'top-secret\n');
    writeFileSync(join(dir, 'pw2'), 'other');
    const file = join(dir, 'target.json');
    const doc = {
      spider: [{ host: '127.0.0.5', port: 25000 }],
      shards: {
        '1': { host: '127.0.0.4', port: 20001 },
        '0': { host: '127.0.0.3', port: 20000, user: 'own', password_file: 'pw2', replicas: [{ host: '127.0.0.6', port: 20002 }] },
      },
      user: 'admin',
      password_file: 'pw',
      scratch: true,
    };
    const write = (v: unknown) => writeFileSync(file, JSON.stringify(v));
    write(doc);
    const t = readDrillTarget(file);
    assert.deepEqual(
      [...t.spiders, ...t.shards].map((i) => `${i.role} ${i.shard} ${i.host}:${i.port} ${i.user}/${i.password}`),
      [
        'spider 0 127.0.0.5:25000 admin/top-secret',
        'master 0 127.0.0.3:20000 own/other',
        'replica 0 127.0.0.6:20002 admin/top-secret',
        'master 1 127.0.0.4:20001 admin/top-secret',
      ],
    );
    for (const [v, message] of [
      [{ ...doc, scratch: false }, `${file}: scratch = false: a drill target must say "scratch": true`],
      [{ ...doc, scratch: undefined }, `${file}: scratch = (missing): a drill target must say "scratch": true`],
      [{ ...doc, password_file: 'nope' }, `${file}: spider[0].password_file = "nope": cannot be read`],
      [{ ...doc, spider: [] }, `${file}: spider = []: needs at least one spider node`],
      [{ ...doc, shards: { x: { host: 'h', port: 1 } } }, `${file}: shards.x = "x": a shard is named by its shard value`],
    ] as const) {
      write(v);
      assert.throws(
        () => readDrillTarget(file),
        (err: unknown) => err instanceof ConfigError && err.message.startsWith(message),
        message,
      );
    }
    writeFileSync(file, '{not json');
    assert.throws(
      () => readDrillTarget(file),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${file}: the drill's target file cannot be read`),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
