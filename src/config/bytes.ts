// Sizes as the config writes them ("50MiB", "64 MiB", "1GiB", a bare number of bytes).
const UNIT: Record<string, number> = {
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
};

/** Bytes, or undefined when the text is not a size. Binary units only: `MB` would be ambiguous, so it is refused. */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!m) return undefined;
  const unit = (m[2] as string).toLowerCase();
  const factor = unit === '' ? 1 : UNIT[unit];
  if (factor === undefined) return undefined;
  const n = Math.round(Number(m[1]) * factor);
  return Number.isSafeInteger(n) ? n : undefined;
}
