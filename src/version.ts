import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The version in package.json (dist/src/version.js is three levels below it). */
export function packageVersion(): string {
  const file = fileURLToPath(new URL('../../package.json', import.meta.url));
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}
