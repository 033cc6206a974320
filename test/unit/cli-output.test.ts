// Tables (box-drawn on a terminal, plain columns otherwise) and when to colour (NO_COLOR).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTable, useColor } from '../../src/cli/render/table.js';

const BOX = /[┌┐└┘│─┬┴┼├┤]/;

test('a plain table: columns two spaces apart, no border characters, no trailing blanks', () => {
  const text = renderTable(
    ['BackupId', 'Port', 'BackupStatus'],
    [
      ['b-1', 20000, 'success'],
      ['a-much-longer-id', 20001, 'failed: exit code 2'],
    ],
    { plain: true },
  );
  assert.doesNotMatch(text, BOX);
  assert.deepEqual(text.split('\n'), [
    'BackupId          Port   BackupStatus',
    'b-1               20000  success',
    'a-much-longer-id  20001  failed: exit code 2',
  ]);
});

test('a terminal table is box-drawn', () => {
  assert.match(renderTable(['a'], [['1']], { plain: false }), BOX);
});

test('colour only on a terminal, and not when NO_COLOR is set to anything but empty', () => {
  assert.equal(useColor({ isTTY: true }, {}), true);
  assert.equal(useColor({ isTTY: true }, { NO_COLOR: '' }), true);
  assert.equal(useColor({ isTTY: true }, { NO_COLOR: '1' }), false);
  assert.equal(useColor({ isTTY: false }, {}), false);
  assert.equal(useColor({}, {}), false);
});

test('printable: control characters from rows are shown escaped, a table cell cannot forge a line', async () => {
  const { printable, renderTable } = await import('../../src/cli/render/table.js');
  assert.equal(printable('failed\x1b[2K\rsuccess'), 'failed\\x1b[2K\\rsuccess');
  assert.equal(printable('a\nb\tc\u202ed\x7f'), 'a\\nb\\tc\\u202ed\\x7f');
  assert.equal(printable('plain ü text'), 'plain ü text');
  const t = renderTable(['A'], [['x\nFORGED']], { plain: true });
  assert.deepEqual(t.split('\n'), ['A', 'x\\nFORGED']);
});
