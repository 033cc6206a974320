// What every command shares: the global options' type, the options several commands take
// (-c, --format), and the parsers that turn bad values into usage errors (exit 2) naming the flag.
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { HeldSignals } from '../signals.js';
import { parseDuration } from '../config/duration.js';
import { validateBackupId } from '../task/backup-id.js';

/** Options given before or after any command (program-level). */
export interface GlobalOptions {
  agentConfig?: string;
  strict?: boolean;
  config?: string[];
}

/** How a command sets the process's exit code (bin/cli.ts owns the process). */
export type SetExit = (code: number) => void;

/** Each command's module exports one of these; program.ts adds them in order. */
/** `held`: the signals held since start (daemon only, see signals.ts). */
export type Register = (program: Command, setExit: SetExit, held?: HeldSignals) => void;

export type Format = 'table' | 'json';

export const splitList = (value: string, previous: string[] = []): string[] => [
  ...previous,
  ...value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== ''),
];

export const configOption = (): Option =>
  new Option(
    '-c, --config <files>',
    'instance config files, comma separated (default: every dbbackup.<port>.ini in [agent] config_dir)',
  ).argParser(splitList);

export const formatOption = (): Option => new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');

export const backupIdOption = (flags: string, description: string): Option =>
  new Option(flags, description).argParser((v: string) => validateBackupId(v, flags.split(' ')[0]));

export function parseForDuration(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new InvalidArgumentError('must be a duration such as 24h, 90m or 2d');
  return ms;
}

export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number');
  return n;
}

export function parseCount(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a number of lines');
  return Number(value);
}
