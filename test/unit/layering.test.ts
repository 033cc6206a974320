// The house map of README "Development", enforced: every import in src/ points down this order of
// folders, the demo kit is a leaf, and no folder grows past what a newcomer can scan.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Lowest first; '.' is the files directly in src/ (errors, log, format, fs, version). */
const LAYERS = [
  '.',
  'config',
  'task',
  'db',
  'sql',
  'repo',
  'runner',
  'archive',
  'host',
  'check',
  'cluster',
  'restore',
  'recovery',
  'state',
  'daemon',
  'cli',
  'bin',
  'sandbox',
];

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts')) out.push(relative(root, p).split('\\').join('/'));
  }
  return out;
}

const files = sources(join(root, 'src'));
const folderOf = (p: string): string => {
  const parts = p.split('/');
  return parts.length > 2 ? (parts[1] as string) : '.';
};
const IMPORT = /(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g;
const imports = files.flatMap((f) =>
  [...readFileSync(join(root, f), 'utf8').matchAll(IMPORT)].map((m) => ({
    from: f,
    to: posix.normalize(posix.join(posix.dirname(f), m[1] as string)),
  })),
);

describe('the layout of src/ (README "Development")', () => {
  it('has every folder in the house map', () => {
    const unknown = [...new Set(files.map(folderOf))].filter((f) => !LAYERS.includes(f));
    assert.deepEqual(unknown, []);
  });

  it('imports only downward, but for the sandbox command, which loads the demo kit', () => {
    const upward = imports
      .filter((i) => LAYERS.indexOf(folderOf(i.to)) > LAYERS.indexOf(folderOf(i.from)))
      .filter((i) => !(i.from === 'src/cli/commands/sandbox.ts' && folderOf(i.to) === 'sandbox'))
      .map((i) => `${i.from} -> ${i.to}`);
    assert.deepEqual(upward, []);
  });

  it('keeps the sandbox a leaf: nothing outside it imports it but the sandbox command, lazily', () => {
    const src = readFileSync(join(root, 'src/cli/commands/sandbox.ts'), 'utf8');
    assert.doesNotMatch(src, /^import[^;]*from '\.\.\/\.\.\/sandbox\//m, 'cli/commands/sandbox.ts imports src/sandbox/ only lazily');
  });

  it('holds at most 25 files in any folder', () => {
    const counts = new Map<string, number>();
    for (const f of files) counts.set(posix.dirname(f), (counts.get(posix.dirname(f)) ?? 0) + 1);
    const big = [...counts].filter(([, n]) => n > 25).map(([d, n]) => `${d}: ${n}`);
    assert.deepEqual(big, []);
  });
});
