// mysql-crond's `list` table (the formats of bk-dbm's versions) read as jobs, and which of the old
// tool's jobs are live, only paused, or disabled but still registered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeCrondJobs, oldJobOf, parseCrondList } from '../../src/host/crond-list.js';

const NOW = new Date('2024-08-02T17:00:00+08:00');

// The newest format (bk-dbm mysql-crond docs/user_guide.md), with row lines between rows.
const NEWEST = `+----+---------------------------------------+---------------+--------------------------------------+--------+---------------------------+
| ID |                  JobName              |   Schedule    |               Command                | Enable |         NextTime          |
+----+---------------------------------------+---------------+--------------------------------------+--------+---------------------------+
| -1 | mysql-rotatebinlog                    | */5 * * * *   | /xxx/mysql-rotatebinlog/rotatebinlog | false  | 2024-08-02T18:50:19+08:00 |
+----+---------------------------------------+---------------+--------------------------------------+--------+---------------------------+
|  5 | mysql-monitor-3306-@every 1m          | @every 1m     | /xxx/mysql-monitor/mysql-monitor     | true   | 2024-08-02T17:59:17+08:00 |
+----+---------------------------------------+---------------+--------------------------------------+--------+---------------------------+
|  7 | spiderbackup-check                    | */1 * * * *   | /home/mysql/dbbackup-go/dbbackup     | true   | 2024-08-02T17:01:00+08:00 |
+----+---------------------------------------+---------------+--------------------------------------+--------+---------------------------+
| -1 | spiderbackup-schedule                 | 0 3 * * *     | /home/mysql/dbbackup-go/dbbackup     | false  | 2024-08-02T19:00:00+08:00 |
+----+---------------------------------------+---------------+--------------------------------------+--------+---------------------------+
`;

// An older cmd/subcmd_list.go: Args and WorkDir, no NextTime; tablewriter's upper-cased headers.
const OLDER = `+----+-----------------------+-----------+----------------------------------+-----------------------------------+-------------------------+--------+
| ID |        JOBNAME        | SCHEDULE  |             COMMAND              |               ARGS                |         WORKDIR         | ENABLE |
+----+-----------------------+-----------+----------------------------------+-----------------------------------+-------------------------+--------+
|  1 | spiderbackup-check    | */1 * * * * | /home/mysql/dbbackup-go/dbbackup | [spiderbackup check --run]        | /home/mysql/dbbackup-go | false  |
|  2 | nightly               | 0 3 * * * | /home/mysql/dbbackup-go/dbbackup | [spiderbackup schedule -c dbbackup.25000.ini] | /home/mysql/dbbackup-go | true   |
+----+-----------------------+-----------+----------------------------------+-----------------------------------+-------------------------+--------+
`;

// The oldest: no JobName column at all.
const OLDEST = `+----+-------------+----------------------------------+---------------------------+--------+
| ID |  SCHEDULE   |             COMMAND              |           ARGS            | ENABLE |
+----+-------------+----------------------------------+---------------------------+--------+
|  3 | */1 * * * * | /home/mysql/dbbackup-go/dbbackup | spiderbackup,check,--run  | true   |
+----+-------------+----------------------------------+---------------------------+--------+
`;

test('the newest table: every row by its column names, row lines skipped', () => {
  const jobs = parseCrondList(NEWEST);
  assert.ok(jobs);
  assert.equal(jobs.length, 4);
  assert.deepEqual(jobs[1], {
    id: '5',
    name: 'mysql-monitor-3306-@every 1m',
    schedule: '@every 1m',
    command: '/xxx/mysql-monitor/mysql-monitor',
    args: undefined,
    enable: true,
    nextTime: '2024-08-02T17:59:17+08:00',
  });
  const found = judgeCrondJobs(jobs, NOW);
  assert.deepEqual(
    found.map((f) => [f.name, f.state, f.until]),
    [
      ['spiderbackup-check', 'live', undefined],
      ['spiderbackup-schedule', 'paused', '2024-08-02T19:00:00+08:00'],
    ],
  );
  assert.match(found[0]?.message ?? '', /still enabled.*\.\/mysql-crond delJob --name spiderbackup-check -c runtime\.yaml/);
  assert.match(found[1]?.message ?? '', /only paused: it comes back at 2024-08-02T19:00:00\+08:00 and schedules a second nightly backup/);
});

test('an older table (Args, WorkDir, upper-cased headers): jobs found by name or by their arguments', () => {
  const jobs = parseCrondList(OLDER);
  assert.ok(jobs);
  assert.deepEqual(
    jobs.map((j) => [j.name, oldJobOf(j), j.enable]),
    [
      ['spiderbackup-check', 'check', false],
      ['nightly', 'schedule', true],
    ],
  );
  const found = judgeCrondJobs(jobs, NOW);
  assert.deepEqual(
    found.map((f) => [f.name, f.state]),
    [
      ['spiderbackup-check', 'disabled'],
      ['nightly', 'live'],
    ],
  );
  assert.match(
    found[0]?.message ?? '',
    /disabled but still registered: unless disabled with --permanent it comes back when mysql-crond restarts/,
  );
});

test('the oldest table (no JobName): the job is known by its arguments', () => {
  const jobs = parseCrondList(OLDEST);
  assert.ok(jobs);
  assert.deepEqual(
    judgeCrondJobs(jobs, NOW).map((f) => [f.kind, f.name, f.state]),
    [['check', 'spiderbackup-check', 'live']],
  );
});

test('a pause whose time has passed is judged disabled, not paused; no old job: nothing to say', () => {
  const jobs = parseCrondList(NEWEST) ?? [];
  assert.deepEqual(
    judgeCrondJobs(jobs, new Date('2024-08-03T00:00:00+08:00')).map((f) => f.state),
    ['live', 'disabled'],
  );
  assert.deepEqual(judgeCrondJobs((parseCrondList(NEWEST) ?? []).slice(0, 2), NOW), []);
});

test('a cell wrapped onto a further line is joined to its row', () => {
  const text = [
    '| ID | JobName | Command | Args | Enable |',
    '|  4 | x | /a/dbbackup | spiderbackup,sch | true |',
    '|    |   |             | edule,-c,a.ini   |      |',
  ].join('\n');
  const jobs = parseCrondList(text);
  assert.equal(jobs?.length, 1);
  assert.equal(jobs?.[0]?.args, 'spiderbackup,schedule,-c,a.ini');
  assert.equal(oldJobOf(jobs?.[0] as NonNullable<typeof jobs>[number]), 'schedule');
});

test('anything else is not a job table: undefined, never a throw', () => {
  for (const text of ['', 'panic: runtime error', '+----+\n| Name |\n+----+', '| ID | JobName |\n| 1 | a | b |', '\u0000\u0001|'])
    assert.equal(parseCrondList(text), undefined, JSON.stringify(text));
  // A header only: a table with no jobs.
  assert.deepEqual(parseCrondList('| ID | JobName | Enable |'), []);
});
