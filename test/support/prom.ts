// A strict reader of the Prometheus text exposition format (0.0.4), enough to prove /metrics is
// well-formed and to read sample values: every line is a comment (# HELP / # TYPE), blank, or
// `name{label="value",...} number`; HELP/TYPE name known metric families; label values are escaped.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([^ ]+) ?(.*)$/.exec(line);
      if (!m) throw new Error(`bad comment at ${where}`);
      if (!NAME.test(m[2] as string)) throw new Error(`bad metric name at ${where}`);
      if (m[1] === 'TYPE') {
        if (!TYPES.has(m[3] as string)) throw new Error(`bad type at ${where}`);
        if (types.has(m[2] as string)) throw new Error(`second TYPE for ${m[2]} at ${where}`);
        types.set(m[2] as string, m[3] as string);
      }
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`bad sample at ${where}`);
    const value = parseValue(m[4] as string, where);
    samples.push({ name: m[1] as string, labels: parseLabels(m[3] ?? '', where), value });
  });
  for (const s of samples) {
    const family = [s.name, s.name.replace(/_(bucket|sum|count|total|created)$/, '')].find((n) => types.has(n));
    if (family === undefined) throw new Error(`sample ${s.name} has no # TYPE`);
  }
  return { types, samples };
}

/** As Prometheus reads values (Go's ParseFloat): Inf and NaN in any letter case. */
function parseValue(v: string, where: string): number {
  const lower = v.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY;
  if (lower === '-inf') return Number.NEGATIVE_INFINITY;
  if (lower === 'nan') return Number.NaN;
  const n = Number(v);
  if (!/^-?[0-9.]+(e[+-]?\d+)?$/i.test(v) || Number.isNaN(n)) throw new Error(`bad value at ${where}`);
  return n;
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new Error(`bad labels at ${where}`);
    labels[m[1] as string] = (m[2] as string).replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    pos = re.lastIndex;
  }
  return labels;
}

/** Sum of the samples of `name` whose labels include `match`. */
export function valueOf(e: Exposition, name: string, match: Record<string, string> = {}): number {
  return e.samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

/**
 * Prometheus' own linter on an exposition (`promtool check metrics` reads it on stdin): exit code
 * 0 and no output when every metric follows its naming and format rules.
 */
export async function promtool(args: string[], stdin?: string): Promise<{ code: number | null; output: string }> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', (err) => reject(new Error(`cannot run promtool (Debian package prometheus): ${err.message}`)));
    child.once('close', (code) => resolve({ code, output }));
    child.stdin.end(stdin ?? '');
  });
}
