// The one-pass table drawing against cli-table3 itself: the same text, character for character,
// for plain and boxed tables, multi-line and empty cells, wide and combining characters.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cliTable3, drawTable, renderTable } from '../../src/cli/render/table.js';

/** A small deterministic generator (no Math.random: a failure must reproduce). */
function generator(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

const PIECES = ['', 'a', 'SPT12', '127.0.0.1:20000', 'running', '漢字', 'é', 'e\u0301', '😀', 'x y', '-', '  ', '\\x1b[2K', '12.3 MiB/s'];

function randomCell(rnd: () => number, multiline: boolean): string {
  const lines = multiline ? 1 + Math.floor(rnd() * 3) : 1;
  return [...Array(lines)]
    .map(() => [...Array(Math.floor(rnd() * 4))].map(() => PIECES[Math.floor(rnd() * PIECES.length)]).join(''))
    .join('\n');
}

test('drawTable draws what cli-table3 draws', () => {
  const rnd = generator(17);
  for (let t = 0; t < 300; t++) {
    const cols = 1 + Math.floor(rnd() * 6);
    const rows = Math.floor(rnd() * 8);
    const multiline = rnd() < 0.5;
    const cells = [...Array(rows + 1)].map(() => [...Array(cols)].map(() => randomCell(rnd, multiline)));
    for (const plain of [true, false]) {
      const expected = cliTable3(cells, plain);
      assert.equal(
        drawTable(cells, plain),
        plain ? expected.replace(/ +$/gm, '') : expected,
        `table ${t}, plain ${plain}: ${JSON.stringify(cells)}`,
      );
    }
  }
});

test('renderTable: a table of two thousand rows as cli-table3 draws it', () => {
  const head = ['Server', 'Role', 'Host:Port', 'Agent', 'Running'];
  const rows = [...Array(2049).keys()].map((i) => [
    `SPT${i}`,
    'master',
    `127.1.${i >> 8}.${i & 255}:20000`,
    `alive v1, ${i % 60} s ago`,
    i % 8 ? '-' : `b-${i}\nfor 3 s`,
  ]);
  for (const plain of [true, false]) {
    const expected = cliTable3([head, ...rows.map((r) => r.map(String))], plain);
    assert.equal(renderTable(head, rows, { plain, multiline: true }), plain ? expected.replace(/ +$/gm, '') : expected);
  }
});

test('renderTable: rows shorter than the head still go to cli-table3', () => {
  const out = renderTable(['A', 'B', 'C'], [['1'], ['1', '2', '3']], { plain: false });
  assert.equal(out, cliTable3([['A', 'B', 'C'], ['1'], ['1', '2', '3']], false));
});
