// Server-side encoding and decoding of MySQL client/server protocol payloads, for the tdbctl
// stand-in. mysql2 ships a server API (handshake, command dispatch, packet framing with sequence
// ids) but its row/prepare encoders are incomplete: BinaryRow.toPacket writes every value as a
// string, TextRow.toPacket cannot write raw bytes and there is no COM_STMT_PREPARE response at
// all. So the payloads are built here and handed to mysql2's `writePacket` for framing.

import { createHash, timingSafeEqual } from 'node:crypto';

/** Command bytes (first byte of a client command packet). */
export const Command = {
  QUIT: 0x01,
  INIT_DB: 0x02,
  QUERY: 0x03,
  FIELD_LIST: 0x04,
  PING: 0x0e,
  CHANGE_USER: 0x11,
  STMT_PREPARE: 0x16,
  STMT_EXECUTE: 0x17,
  STMT_SEND_LONG_DATA: 0x18,
  STMT_CLOSE: 0x19,
  STMT_RESET: 0x1a,
  SET_OPTION: 0x1b,
  RESET_CONNECTION: 0x1f,
} as const;

/** Column types (MYSQL_TYPE_*). */
export const Type = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  JSON: 245,
  NEWDECIMAL: 246,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

export const ColumnFlag = { NOT_NULL: 0x0001, UNSIGNED: 0x0020, BINARY: 0x0080 } as const;

export const Charset = { UTF8MB4_GENERAL_CI: 45, BINARY: 63, UTF8MB4_UNICODE_CI: 224 } as const;

export const ServerStatus = { AUTOCOMMIT: 0x0002, MORE_RESULTS_EXISTS: 0x0008 } as const;

/** Column metadata, as carried by a Protocol::ColumnDefinition41 packet. */
export interface ColumnDef {
  schema: string;
  table: string;
  orgTable: string;
  name: string;
  orgName: string;
  characterSet: number;
  columnLength: number;
  columnType: number;
  flags: number;
  decimals: number;
}

/**
 * One outgoing packet in the shape mysql2's `Connection.writePacket` expects: a buffer with
 * 4 reserved header bytes, `length()` including them, and `writeHeader(sequenceId)`.
 */
export class RawPacket {
  readonly buffer: Buffer;
  readonly _name = 'StandIn';

  constructor(payload: Buffer) {
    this.buffer = Buffer.concat([Buffer.alloc(4), payload]);
  }

  length(): number {
    return this.buffer.length;
  }

  writeHeader(sequenceId: number): void {
    this.buffer.writeUIntLE(this.buffer.length - 4, 0, 3);
    this.buffer[3] = sequenceId;
  }
}

// ---------------------------------------------------------------- writing

export function lenencInt(n: number | bigint): Buffer {
  const v = BigInt(n);
  if (v < 251n) return Buffer.from([Number(v)]);
  if (v < 0x10000n) return uint(0xfc, 2, v);
  if (v < 0x1000000n) return uint(0xfd, 3, v);
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeBigUInt64LE(v, 1);
  return b;
}

function uint(prefix: number, bytes: number, v: bigint): Buffer {
  const b = Buffer.alloc(1 + bytes);
  b[0] = prefix;
  b.writeUIntLE(Number(v), 1, bytes);
  return b;
}

export function lenencBytes(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return Buffer.concat([lenencInt(bytes.length), bytes]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n & 0xffff);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export interface OkInfo {
  affectedRows?: number;
  insertId?: number | bigint;
  serverStatus?: number;
  warningCount?: number;
  info?: string;
}

export function okPayload(ok: OkInfo = {}): Buffer {
  return Buffer.concat([
    Buffer.from([0x00]),
    lenencInt(ok.affectedRows ?? 0),
    lenencInt(ok.insertId ?? 0),
    u16(ok.serverStatus ?? ServerStatus.AUTOCOMMIT),
    u16(ok.warningCount ?? 0),
    Buffer.from(ok.info ?? '', 'utf8'),
  ]);
}

export function eofPayload(warnings = 0, serverStatus: number = ServerStatus.AUTOCOMMIT): Buffer {
  return Buffer.concat([Buffer.from([0xfe]), u16(warnings), u16(serverStatus)]);
}

export function errorPayload(code: number, sqlState: string, message: string): Buffer {
  const state = (sqlState + 'HY000').slice(0, 5);
  return Buffer.concat([Buffer.from([0xff]), u16(code), Buffer.from(`#${state}${message}`, 'utf8')]);
}

export function columnDefPayload(c: ColumnDef): Buffer {
  return Buffer.concat([
    lenencBytes('def'),
    lenencBytes(c.schema),
    lenencBytes(c.table),
    lenencBytes(c.orgTable),
    lenencBytes(c.name),
    lenencBytes(c.orgName),
    Buffer.from([0x0c]),
    u16(c.characterSet),
    u32(c.columnLength),
    Buffer.from([c.columnType]),
    u16(c.flags),
    Buffer.from([c.decimals]),
    Buffer.alloc(2),
  ]);
}

/** The payloads of a complete result set without rows: column count, definitions, EOF. */
export function resultSetHead(columns: readonly ColumnDef[]): Buffer[] {
  return [lenencInt(columns.length), ...columns.map(columnDefPayload), eofPayload()];
}

/** A text-protocol row; values are the raw bytes the backend sent (null for SQL NULL). */
export function textRowPayload(values: readonly (Buffer | string | null)[]): Buffer {
  return Buffer.concat(values.map((v) => (v === null ? Buffer.from([0xfb]) : lenencBytes(v))));
}

/** COM_STMT_PREPARE_OK header; parameter and column definitions follow as separate packets. */
export function prepareOkPayload(stmtId: number, columns: number, params: number, warnings = 0): Buffer {
  return Buffer.concat([Buffer.from([0x00]), u32(stmtId), u16(columns), u16(params), Buffer.from([0]), u16(warnings)]);
}

/**
 * A binary-protocol row. `values` are what mysql2 returns for a backend connection configured
 * with dateStrings, supportBigNumbers+bigNumberStrings and jsonStrings, so each value can be
 * re-encoded exactly according to the column type.
 */
export function binaryRowPayload(columns: readonly ColumnDef[], values: readonly unknown[]): Buffer {
  const bitmap = Buffer.alloc(Math.floor((columns.length + 7 + 2) / 8));
  const parts: Buffer[] = [];
  columns.forEach((col, i) => {
    const v = values[i];
    if (v === null || v === undefined) {
      const bit = i + 2; // the binary row null bitmap has an offset of 2
      bitmap[bit >> 3]! |= 1 << (bit & 7);
      return;
    }
    parts.push(binaryValue(col, v));
  });
  return Buffer.concat([Buffer.from([0x00]), bitmap, ...parts]);
}

function binaryValue(col: ColumnDef, v: unknown): Buffer {
  switch (col.columnType) {
    case Type.TINY:
      return intBytes(v, 1);
    case Type.SHORT:
    case Type.YEAR:
      return intBytes(v, 2);
    case Type.LONG:
    case Type.INT24:
      return intBytes(v, 4);
    case Type.LONGLONG:
      return intBytes(v, 8);
    case Type.FLOAT: {
      const b = Buffer.alloc(4);
      b.writeFloatLE(Number(v));
      return b;
    }
    case Type.DOUBLE: {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(Number(v));
      return b;
    }
    case Type.DATE:
    case Type.NEWDATE:
    case Type.DATETIME:
    case Type.TIMESTAMP:
      return dateTimeBytes(String(v));
    case Type.TIME:
      return timeBytes(String(v));
    default:
      return lenencBytes(Buffer.isBuffer(v) ? v : String(v));
  }
}

/** Two's complement little endian; BigInt.asUintN makes signed and unsigned values alike. */
function intBytes(v: unknown, bytes: number): Buffer {
  const n = BigInt.asUintN(bytes * 8, BigInt(typeof v === 'bigint' ? v : String(v)));
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b.subarray(0, bytes);
}

const DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?$/;

function dateTimeBytes(s: string): Buffer {
  const m = DATETIME_RE.exec(s);
  if (!m) throw new Error(`stand-in cannot encode date/time value ${JSON.stringify(s)}`);
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map((x) => Number(x ?? 0)) as [number, number, number, number, number, number];
  const micro = Number((m[7] ?? '').padEnd(6, '0') || 0);
  const b = Buffer.alloc(12);
  b.writeUInt16LE(y, 1);
  b[3] = mo;
  b[4] = d;
  b[5] = h;
  b[6] = mi;
  b[7] = se;
  b.writeUInt32LE(micro, 8);
  const len = micro ? 11 : 7;
  b[0] = len;
  return b.subarray(0, len + 1);
}

const TIME_RE = /^(-)?(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;

function timeBytes(s: string): Buffer {
  const m = TIME_RE.exec(s);
  if (!m) throw new Error(`stand-in cannot encode time value ${JSON.stringify(s)}`);
  const hours = Number(m[2]);
  const micro = Number((m[5] ?? '').padEnd(6, '0') || 0);
  const b = Buffer.alloc(13);
  b[1] = m[1] ? 1 : 0;
  b.writeUInt32LE(Math.floor(hours / 24), 2);
  b[6] = hours % 24;
  b[7] = Number(m[3]);
  b[8] = Number(m[4]);
  b.writeUInt32LE(micro, 9);
  const len = micro ? 12 : 8;
  b[0] = len;
  return b.subarray(0, len + 1);
}

// ---------------------------------------------------------------- reading

/** Sequential reader over a command payload. */
export class Reader {
  constructor(
    private readonly buf: Buffer,
    public offset = 0,
  ) {}

  u8(): number {
    return this.buf.readUInt8(this.offset++);
  }

  uint(bytes: number): number {
    const v = this.buf.readUIntLE(this.offset, bytes);
    this.offset += bytes;
    return v;
  }

  int(bytes: number, unsigned: boolean): number | bigint {
    const raw = this.buf.subarray(this.offset, this.offset + bytes);
    this.offset += bytes;
    const padded = Buffer.concat([raw, Buffer.alloc(8 - bytes)]);
    const u = padded.readBigUInt64LE();
    const v = unsigned ? u : BigInt.asIntN(bytes * 8, u);
    return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  }

  bytes(n: number): Buffer {
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  lenencInt(): number {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.uint(2);
    if (first === 0xfd) return this.uint(3);
    if (first === 0xfe) return Number(this.int(8, true));
    throw new Error(`bad length-encoded integer prefix 0x${first.toString(16)}`);
  }

  lenencBytes(): Buffer {
    return this.bytes(this.lenencInt());
  }

  rest(): Buffer {
    return this.bytes(this.buf.length - this.offset);
  }
}

export interface ExecuteRequest {
  stmtId: number;
  /** Parameter types as sent (type byte | unsigned flag << 8), needed when a later execute omits them. */
  types: number[];
  values: unknown[];
}

/**
 * Decodes a COM_STMT_EXECUTE payload (command byte included). `paramCount` comes from the
 * prepare; `previousTypes` are reused when the client sets new-params-bound = 0.
 */
export function parseExecute(
  payload: Buffer,
  paramCount: (stmtId: number) => number | undefined,
  previousTypes: (stmtId: number) => number[] | undefined,
): ExecuteRequest {
  const r = new Reader(payload, 1);
  const stmtId = r.uint(4);
  r.u8(); // cursor flags: the stand-in never opens cursors
  r.uint(4); // iteration count, always 1
  const count = paramCount(stmtId);
  if (count === undefined) throw new UnknownStatementError(stmtId);
  if (count === 0) return { stmtId, types: [], values: [] };
  const nullBitmap = r.bytes(Math.floor((count + 7) / 8));
  const newParamsBound = r.u8() === 1;
  const types = newParamsBound
    ? Array.from({ length: count }, () => r.u8() | (r.u8() << 8))
    : (previousTypes(stmtId) ?? Array.from({ length: count }, () => Type.VAR_STRING));
  const values = types.map((t, i) => ((nullBitmap[i >> 3]! >> (i & 7)) & 1 ? null : readParam(r, t)));
  return { stmtId, types, values };
}

export class UnknownStatementError extends Error {
  constructor(readonly stmtId: number) {
    super(`Unknown prepared statement handler (${stmtId}) given to mysqld_stmt_execute`);
  }
}

function readParam(r: Reader, typeWord: number): unknown {
  const type = typeWord & 0xff;
  const unsigned = (typeWord & 0x8000) !== 0;
  switch (type) {
    case Type.NULL:
      return null;
    case Type.TINY:
      return r.int(1, unsigned);
    case Type.SHORT:
    case Type.YEAR:
      return r.int(2, unsigned);
    case Type.LONG:
    case Type.INT24:
      return r.int(4, unsigned);
    case Type.LONGLONG:
      return r.int(8, unsigned);
    case Type.FLOAT:
      return r.bytes(4).readFloatLE();
    case Type.DOUBLE:
      return r.bytes(8).readDoubleLE();
    case Type.DATE:
    case Type.DATETIME:
    case Type.TIMESTAMP:
      return readDateTime(r);
    case Type.TIME:
      return readTime(r);
    case Type.TINY_BLOB:
    case Type.MEDIUM_BLOB:
    case Type.LONG_BLOB:
    case Type.BLOB:
    case Type.GEOMETRY:
      return r.lenencBytes();
    default:
      // strings, decimals, JSON, enums: text in the connection character set (utf8mb4)
      return r.lenencBytes().toString('utf8');
  }
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/**
 * A local-time Date, as a mysql2 client (timezone 'local') sent it, so the backend connection
 * (also 'local') sends back the same DATETIME. Values a Date cannot hold exactly (zero dates,
 * microseconds) stay text, which the server converts just as well.
 */
function readDateTime(r: Reader): Date | string {
  const len = r.u8();
  const p = r.bytes(len);
  const [y, mo, d, h, mi, s] = [len >= 4 ? p.readUInt16LE(0) : 0, p[2] ?? 0, p[3] ?? 0, p[4] ?? 0, p[5] ?? 0, p[6] ?? 0];
  const micro = len >= 11 ? p.readUInt32LE(7) : 0;
  if (y > 0 && mo > 0 && d > 0 && micro % 1000 === 0) return new Date(y, mo - 1, d, h, mi, s, micro / 1000);
  return `${pad(y, 4)}-${pad(mo)}-${pad(d)} ${pad(h)}:${pad(mi)}:${pad(s)}.${pad(micro, 6)}`;
}

function readTime(r: Reader): string {
  const len = r.u8();
  const p = r.bytes(len);
  if (len === 0) return '00:00:00';
  const hours = p.readUInt32LE(1) * 24 + (p[5] ?? 0);
  const micro = len >= 12 ? `.${pad(p.readUInt32LE(8), 6)}` : '';
  return `${p[0] ? '-' : ''}${pad(hours)}:${pad(p[6] ?? 0)}:${pad(p[7] ?? 0)}${micro}`;
}

// ---------------------------------------------------------------- authentication

function sha1(...parts: Buffer[]): Buffer {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Checks a mysql_native_password token: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))). */
export function nativePasswordMatches(password: string, scramble: Buffer, token: Buffer): boolean {
  if (password === '') return token.length === 0;
  const stage1 = sha1(Buffer.from(password, 'utf8'));
  const mask = sha1(scramble, sha1(stage1));
  const expected = Buffer.from(stage1.map((b, i) => b ^ mask[i]!));
  return token.length === expected.length && timingSafeEqual(token, expected);
}
