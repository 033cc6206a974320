// Paths built from outside values (a task row's backup id, a manifest's file names) must stay
// inside the directory they are meant for: resolved, then checked, before anything touches them.
import { isAbsolute, relative, resolve } from 'node:path';

export class PathEscapeError extends Error {
  override readonly name = 'PathEscapeError';
}

/**
 * `base` joined with `parts`, resolved, and strictly below `base` (never `base` itself, never
 * outside it): a '..', an absolute part or a separator that leaves it throws.
 */
export function resolveUnder(base: string, ...parts: string[]): string {
  const root = resolve(base);
  const path = resolve(root, ...parts);
  const rel = relative(root, path);
  if (rel === '' || rel === '..' || rel.startsWith('../') || isAbsolute(rel)) {
    throw new PathEscapeError(`${JSON.stringify(parts.join('/'))} leaves ${root}`);
  }
  return path;
}

/** Whether `name` is one plain file name: no separator, not '.' or '..'. */
export const isPlainName = (name: string): boolean => name !== '' && name !== '.' && name !== '..' && !/[/\\\0]/.test(name);
