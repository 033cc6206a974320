// How sizes and durations read for people, in every view (status, list, status --cluster, the
// demo, error messages). Machine output (JSON, metrics, log fields) keeps raw numbers.

/** "512 B", "1.5 KiB", "300 MiB": one decimal under 10 of a unit. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/**
 * Milliseconds for people: "31 ms", "2.3 s", "1m40s", "1h02m05s". Past a day the hours keep
 * counting ("26h00m00s", not "1d02h00m"): the durations shown here (backups, ages, the 48 h
 * timeout) are read against limits given in hours, and one shape from a minute up keeps columns
 * comparable. Each step is rounded to what it shows, so 59.97 s is "1m00s", never "60.0 s". A
 * negative span (clocks disagreeing) keeps its sign rather than pretending to be zero.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  const wholeMs = Math.round(ms);
  if (wholeMs < 1000) return `${wholeMs} ms`;
  const tenths = Math.round(ms / 100);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${pad2(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${pad2(Math.floor((s % 3600) / 60))}m${pad2(s % 60)}s`;
}

/**
 * Whole seconds for people, for what is only known to the second (ages by the database clock,
 * durations stored in seconds): "0 s", "32 s", then as formatDuration ("1m40s", "1h02m05s"). A
 * tenth would claim a precision the number does not have.
 */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return String(s);
  const whole = Math.round(s);
  return Math.abs(whole) < 60 ? `${whole} s` : formatDuration(whole * 1000);
}
