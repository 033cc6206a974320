// Durations as the config and the command line write them ("10s", "48h"), read and written back.
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * The longest delay node's timers honour (2^31-1 ms, about 24.8 days): a longer setTimeout fires
 * at once, so a loop armed with it would spin instead of wait.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Parses "10s", "1m", "24h", "1h30m", "500ms"; a bare number means seconds (as operators write in
 * the old tool's flags). Returns milliseconds, or undefined when the text is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== s.length) return undefined;
  return Math.round(total);
}

/**
 * A duration as the config writes it ("100ms", "10s", "1h"), which parseDuration reads back: for
 * messages that tell what to put in the config (`must be at least 100ms`). Durations shown to
 * people in views go through formatDuration in src/format.ts.
 */
export function formatConfigDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
