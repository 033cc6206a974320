// The agent's version, as package.json says (shown by --version and published with the presence).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The version in package.json (dist/src/version.js is three levels below it). */
export function packageVersion(): string {
  if (cached === undefined) {
    const file = fileURLToPath(new URL('../../package.json', import.meta.url));
    cached = (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  }
  return cached;
}
