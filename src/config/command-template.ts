import { ConfigError } from '../errors.js';

export const PLACEHOLDERS = ['config', 'backup_id', 'shard_value', 'port', 'host', 'install_dir'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
export type TemplateValues = Record<Placeholder, string>;

const PLACEHOLDER_RE = /\{([a-z_]+)\}/g;

/**
 * Splits a command template on whitespace. Splitting happens before substitution so that a
 * value (a backup id, a path with spaces) can never add or split an argument.
 */
export function parseCommandTemplate(text: string, file: string, key: string): string[] {
  const argv = text
    .trim()
    .split(/\s+/)
    .filter((a) => a !== '');
  if (argv.length === 0) throw new ConfigError(file, key, text, 'must name a command');
  for (const arg of argv) {
    for (const m of arg.matchAll(PLACEHOLDER_RE)) {
      if (!(PLACEHOLDERS as readonly string[]).includes(m[1] as string)) {
        throw new ConfigError(file, key, text, `unknown placeholder {${m[1]}} (known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(' ')})`);
      }
    }
  }
  return argv;
}

export function expandCommand(template: readonly string[], values: TemplateValues): string[] {
  return template.map((arg) => arg.replace(PLACEHOLDER_RE, (_, name: string) => values[name as Placeholder]));
}
