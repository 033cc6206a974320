import { readFileSync } from 'node:fs';
import { parse } from 'ini';
import { ConfigError, errorMessage } from '../errors.js';

export type IniSections = Record<string, Record<string, unknown>>;

/** Reads and parses an INI file; unreadable files become a ConfigError naming the file. */
export function readIni(file: string): IniSections {
  return readIniText(file).sections;
}

/** readIni, plus the text as read, for the few values `ini` cannot read as they are meant. */
export function readIniText(file: string): { text: string; sections: IniSections } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, undefined, undefined, `cannot read: ${errorMessage(err)}`);
  }
  return { text, sections: parse(text) as IniSections };
}

/** Typed accessors that name file, section.key and value in every error. */
export class IniReader {
  constructor(
    readonly file: string,
    readonly sections: IniSections,
  ) {}

  raw(section: string, key: string): unknown {
    const s = this.sections[section];
    return s && typeof s === 'object' ? s[key] : undefined;
  }

  string(section: string, key: string, fallback?: string): string {
    const v = this.raw(section, key);
    if (v === undefined || v === '') {
      if (fallback !== undefined) return fallback;
      throw new ConfigError(this.file, `[${section}] ${key}`, undefined, 'required');
    }
    if (typeof v !== 'string') throw this.invalid(section, key, v, 'must be a single value');
    return v.trim();
  }

  optionalString(section: string, key: string): string | undefined {
    const v = this.raw(section, key);
    if (v === undefined || v === '') return undefined;
    return this.string(section, key);
  }

  int(section: string, key: string, opts: { min?: number; max?: number; fallback?: number } = {}): number {
    const v = this.raw(section, key);
    if ((v === undefined || v === '') && opts.fallback !== undefined) return opts.fallback;
    const text = this.string(section, key);
    if (!/^-?\d+$/.test(text)) throw this.invalid(section, key, v, 'must be an integer');
    const n = Number(text);
    if (opts.min !== undefined && n < opts.min) throw this.invalid(section, key, v, `must be at least ${opts.min}`);
    if (opts.max !== undefined && n > opts.max) throw this.invalid(section, key, v, `must be at most ${opts.max}`);
    return n;
  }

  bool(section: string, key: string, fallback: boolean): boolean {
    const v = this.raw(section, key);
    if (v === undefined || v === '') return fallback;
    if (typeof v === 'boolean') return v;
    const t = String(v).trim().toLowerCase();
    if (['true', 'yes', 'on', '1'].includes(t)) return true;
    if (['false', 'no', 'off', '0'].includes(t)) return false;
    throw this.invalid(section, key, v, 'must be true or false');
  }

  invalid(section: string, key: string, value: unknown, problem: string): ConfigError {
    return new ConfigError(this.file, `[${section}] ${key}`, value, problem);
  }
}
