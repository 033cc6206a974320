import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGtidPos } from '../../src/archive/gtid.js';
import { XaCarry } from '../../src/restore/xa-carry.js';

// The shape of `mariadb-binlog` output (10.11): one "# at N" + header line per event.
const group = (seq: number, at: number, body: string[]) => [
  `# at ${at}`,
  `#261126  0:06:25 server id 2  end_log_pos ${at + 40} CRC32 0x0 \tGTID 0-2-${seq} trans`,
  `/*M!100001 SET @@session.gtid_seq_no=${seq}*//*!*/;`,
  ...body,
];
const prepare = (seq: number, at: number, xid: string, db = 'bank') => [
  ...group(seq, at, [`XA START ${xid}/*!*/;`]),
  `# at ${at + 40}`,
  '#261126  0:06:25 server id 2  end_log_pos 0 CRC32 0x0 \tQuery\tthread_id=13',
  `use \`${db}\`/*!*/;`,
  `update ${db}.acct set balance = balance + ${seq} where id = 1`,
  '/*!*/;',
  `# at ${at + 80}`,
  `#261126  0:06:25 server id 2  end_log_pos 0 CRC32 0x0 \tXID = ${xid}`,
  `XA PREPARE ${xid}`,
  '/*!*/;',
];
const commit = (seq: number, at: number, xid: string) => group(seq, at, [`XA COMMIT ${xid}`, '/*!*/;']);
const A = "X'3134',X'6339',1";
const B = "X'3136',X'6339',1";
const C = "X'3135',X'6339',1";

const text = [
  'DELIMITER /*!*/;',
  '# at 4',
  '#261126  0:06:25 server id 2  end_log_pos 256 CRC32 0x0 \tStart: binlog v 4, server v 10.11.19',
  "BINLOG '",
  'AXgHaw8CAAAA',
  "'/*!*/;",
  // Printed once, in the first GTID event: kept when that group is dropped.
  ...prepare(1, 1000, A).flatMap((l, i) =>
    i === 2 ? ['/*M!100001 SET @@session.gtid_domain_id=0*//*!*/;', '/*M!100001 SET @@session.server_id=2*//*!*/;', l] : [l],
  ),
  ...commit(2, 2000, A), // committed before the start: in the dump
  ...prepare(3, 3000, B), // prepared before the start, committed after: not in the dump
  ...prepare(4, 4000, C),
  ...commit(5, 5000, C),
  ...commit(6, 6000, B),
  'DELIMITER ;',
  '# End of log file',
  'ROLLBACK /* added by mysqlbinlog */;',
];

function run(start: string): { out: string; carried: number } {
  let out = '';
  const c = new XaCarry(parseGtidPos(start), (t) => (out += t));
  for (const l of text) c.line(l);
  c.end();
  return { out, carried: c.carried };
}

test('XaCarry: an XA prepared at the start position is prepared again before the rest; what the copy holds is dropped', () => {
  const { out, carried } = run('0-2-3');
  assert.equal(carried, 1);
  const xa = out.split('\n').filter((l) => /^XA /.test(l));
  assert.deepEqual(xa, [
    `XA START ${B}/*!*/;`,
    `XA PREPARE ${B}`,
    `XA START ${C}/*!*/;`,
    `XA PREPARE ${C}`,
    `XA COMMIT ${C}`,
    `XA COMMIT ${B}`,
  ]);
  assert.match(out, /^DELIMITER \/\*!\*\/;\n# at 4\n.*Start: binlog/, 'the file header passes');
  assert.match(out, /BINLOG '\nAXgHaw8CAAAA\n'/);
  assert.match(out, /DELIMITER ;\n# End of log file\nROLLBACK/, 'the trailer passes');
  assert.doesNotMatch(out, /GTID 0-2-[12] /, 'groups the copy holds are dropped');
  assert.match(out, /use `bank`/, 'session settings of dropped groups are kept');
  assert.match(
    out,
    /SET @@session\.server_id=2\*\//,
    "the dropped first group's server_id is kept: the replay is binlogged with the shard's GTIDs",
  );
  assert.match(out, /SET @@session\.gtid_domain_id=0\*\//);
});

test('XaCarry: nothing pending at the start: only what follows it', () => {
  const { out, carried } = run('0-2-2');
  assert.equal(carried, 0);
  assert.deepEqual(
    out
      .split('\n')
      .filter((l) => /GTID 0-2-/.test(l))
      .map((l) => /GTID (\S+)/.exec(l)?.[1]),
    ['0-2-3', '0-2-4', '0-2-5', '0-2-6'],
  );
  // B is still prepared at 0-2-5: prepared again, then its commit.
  const late = run('0-2-5');
  assert.equal(late.carried, 1);
  assert.deepEqual(
    late.out.split('\n').filter((l) => /^XA /.test(l)),
    [`XA START ${B}/*!*/;`, `XA PREPARE ${B}`, `XA COMMIT ${B}`],
  );
});

function runWith(start: string, opts: { carry?: boolean; alreadyPrepared?: string[] }, lines = text) {
  let out = '';
  const c = new XaCarry(parseGtidPos(start), (t) => (out += t), opts);
  for (const l of lines) c.line(l);
  c.end();
  return { xa: out.split('\n').filter((l) => /^XA /.test(l)), skipped: c.skipped, carried: c.carried };
}

test('XaCarry: an XA the copy already holds prepared after its recorded position is not prepared again; its COMMIT is replayed', () => {
  // The copy's position says 0-2-2, but it holds C prepared (0-2-4): only C's COMMIT and B's group apply.
  const r = runWith('0-2-2', { carry: false, alreadyPrepared: [C.toLowerCase()] });
  assert.equal(r.skipped, 1);
  assert.equal(r.carried, 0);
  assert.deepEqual(r.xa, [`XA START ${B}/*!*/;`, `XA PREPARE ${B}`, `XA COMMIT ${C}`, `XA COMMIT ${B}`]);
});

test('XaCarry: an XID the copy held prepared and the replay commits first is applied when Spider reuses it', () => {
  // B is prepared in the copy at 0-2-3; after its COMMIT (0-2-6) the same XID is used again.
  const reuse = [...text.slice(0, -3), ...prepare(7, 7000, B), ...commit(8, 8000, B), ...text.slice(-3)];
  const r = runWith('0-2-3', { carry: false, alreadyPrepared: [B] }, reuse);
  assert.equal(r.skipped, 0);
  assert.deepEqual(r.xa, [
    `XA START ${C}/*!*/;`,
    `XA PREPARE ${C}`,
    `XA COMMIT ${C}`,
    `XA COMMIT ${B}`,
    `XA START ${B}/*!*/;`,
    `XA PREPARE ${B}`,
    `XA COMMIT ${B}`,
  ]);
});
