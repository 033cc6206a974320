/**
 * TEST STAND-IN for TenDB Cluster's tdbctl control node. NOT a real tdbctl.
 *
 * The integration tests run on MariaDB, which has no tdbctl and in particular no
 * `tdbctl get primary` statement. This stand-in is a real MySQL-protocol server (mysql2's server
 * API) that answers `tdbctl get primary` itself, from settings the test controls (see
 * {@link TdbctlStandIn.setPrimary}), and forwards every other statement - text queries, `SET`,
 * prepared statements with parameters - to a backing MariaDB that holds the same mysql.servers
 * entries a tdbctl node would list. Results, OK packets and errors are relayed to the client.
 *
 * Limits, fine for tests: one result set per statement (no CALL with several), no cursors, no
 * COM_STMT_SEND_LONG_DATA, no TLS/compression, and the client's character set is not forwarded
 * (the backend session is utf8mb4).
 */
import net from 'node:net';
import mysql from 'mysql2';
import type { FieldPacket, QueryOptions, ResultSetHeader } from 'mysql2';
import {
  Charset,
  type ColumnDef,
  ColumnFlag,
  Command,
  type ExecuteRequest,
  RawPacket,
  Reader,
  ServerStatus,
  Type,
  UnknownStatementError,
  binaryRowPayload,
  columnDefPayload,
  eofPayload,
  errorPayload,
  nativePasswordMatches,
  okPayload,
  parseExecute,
  prepareOkPayload,
  resultSetHead,
  textRowPayload,
} from './mysql-wire.js';

export interface TdbctlStandInOptions {
  /** Listen address; default 127.0.0.1. */
  host?: string;
  port: number;
  /** The only user accepted; its password is checked (mysql_native_password). */
  user: string;
  password: string;
  /** The backing MariaDB every statement but `tdbctl get primary` goes to. */
  backend: { host: string; port: number; user: string; password: string };
  /** SERVER_NAME reported by `tdbctl get primary`; default TDBCTL0. */
  serverName?: string;
}

export interface PrimaryRow {
  SERVER_NAME: string;
  HOST: string;
  PORT: number;
  IS_THIS_SERVER: number;
}

export class TdbctlStandIn {
  readonly host: string;
  readonly port: number;
  private isThisPrimary = true;
  private server: Mysql2Server | undefined;
  private readonly sessions = new Set<Session>();
  private nextConnectionId = 1;

  constructor(private readonly opts: TdbctlStandInOptions) {
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port;
  }

  /** Whether `tdbctl get primary` says this node is the primary (IS_THIS_SERVER 1) or not (0). */
  setPrimary(isThis: boolean): void {
    this.isThisPrimary = isThis;
  }

  primary(): PrimaryRow {
    return {
      SERVER_NAME: this.opts.serverName ?? 'TDBCTL0',
      HOST: this.host,
      PORT: this.port,
      IS_THIS_SERVER: this.isThisPrimary ? 1 : 0,
    };
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Listens on host:port. Rejects (e.g. EADDRINUSE) instead of crashing the process. */
  async start(): Promise<void> {
    if (this.server) return;
    const server = mysql.createServer((conn) => this.accept(conn as unknown as ServerConnection)) as unknown as Mysql2Server;
    const listener = server._server;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(this.port, this.host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  /** Simulates an outage: stops listening and drops every client connection. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server._server.close(() => resolve()));
    for (const s of [...this.sessions]) s.close();
    await closed;
  }

  close(): Promise<void> {
    return this.stop();
  }

  private accept(conn: ServerConnection): void {
    const session = new Session(conn, this.nextConnectionId++, {
      user: this.opts.user,
      password: this.opts.password,
      backend: this.opts.backend,
      primary: () => this.primary(),
      closed: (s) => this.sessions.delete(s),
    });
    this.sessions.add(session);
  }
}

// ---------------------------------------------------------------- one client connection

/** The parts of mysql2's server-side connection object the stand-in uses (untyped upstream). */
interface ServerConnection {
  stream: net.Socket;
  /** mysql2 frames packets with this; a reply to a command starts at 1. */
  sequenceId: number;
  serverHandshake(args: HandshakeArgs): void;
  writePacket(packet: RawPacket): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- mysql2's server events carry differing arguments
  on(event: string, listener: (...args: any[]) => void): unknown;
}

interface Mysql2Server {
  /** mysql2's Server wraps a net.Server but exposes neither its listen errors nor a listen callback. */
  _server: net.Server;
}

interface AuthParams {
  user: string;
  database: string;
  address: string;
  authPluginData1: Buffer;
  authPluginData2: Buffer;
  authToken: Buffer;
}

type AuthDone = (err: null, failure?: { message: string; code: number }) => void;

interface HandshakeArgs {
  protocolVersion: number;
  serverVersion: string;
  connectionId: number;
  statusFlags: number;
  characterSet: number;
  capabilityFlags: number;
  authCallback: (params: AuthParams, done: AuthDone) => void;
}

interface SessionHost {
  user: string;
  password: string;
  backend: TdbctlStandInOptions['backend'];
  primary(): PrimaryRow;
  closed(session: Session): void;
}

// CLIENT_* capabilities offered. Deliberately not: CLIENT_DEPRECATE_EOF (mysql2 writes EOF
// packets), SSL, COMPRESS, SESSION_TRACK, QUERY_ATTRIBUTES, MULTI_STATEMENTS.
const CAPABILITIES =
  0x00000001 | // LONG_PASSWORD
  0x00000002 | // FOUND_ROWS: mysql2 clients ask for it and so does the backend connection
  0x00000004 | // LONG_FLAG
  0x00000008 | // CONNECT_WITH_DB
  0x00000200 | // PROTOCOL_41
  0x00002000 | // TRANSACTIONS
  0x00008000 | // SECURE_CONNECTION
  0x00080000 | // PLUGIN_AUTH
  0x00200000; // PLUGIN_AUTH_LENENC_CLIENT_DATA

/** What real tdbctl (MySQL 5.7 based) reports; not "MariaDB", so clients use MySQL behaviour. */
const SERVER_VERSION = '5.7.20-tdbctl-stand-in';

const GET_PRIMARY = /^\s*tdbctl\s+get\s+primary\s*;?\s*$/i;

const PRIMARY_COLUMNS: ColumnDef[] = [stringColumn('SERVER_NAME'), stringColumn('HOST'), intColumn('PORT'), intColumn('IS_THIS_SERVER')];

/** In the order of PRIMARY_COLUMNS. */
function primaryValues(p: PrimaryRow): [string, string, number, number] {
  return [p.SERVER_NAME, p.HOST, p.PORT, p.IS_THIS_SERVER];
}

function stringColumn(name: string): ColumnDef {
  return column(name, {
    characterSet: Charset.UTF8MB4_GENERAL_CI,
    columnLength: 256,
    columnType: Type.VAR_STRING,
    flags: ColumnFlag.NOT_NULL,
  });
}

function intColumn(name: string): ColumnDef {
  const flags = ColumnFlag.NOT_NULL | ColumnFlag.BINARY;
  return column(name, { characterSet: Charset.BINARY, columnLength: 11, columnType: Type.LONG, flags });
}

function column(name: string, t: Pick<ColumnDef, 'characterSet' | 'columnLength' | 'columnType' | 'flags'>): ColumnDef {
  return { schema: '', table: '', orgTable: '', name, orgName: name, decimals: 0, ...t };
}

/** A prepared statement of this session: forwarded to the backend, or answered locally. */
interface Statement {
  sql: string;
  local: boolean;
  paramCount: number;
  types?: number[];
}

/** mysql2 hands the dispatch events to listeners; the stand-in answers from 'packet' instead. */
const DISPATCH_EVENTS = ['query', 'stmt_prepare', 'stmt_execute', 'init_db', 'ping', 'field_list'];

class Session {
  private backend: mysql.Connection | undefined;
  private readonly statements = new Map<number, Statement>();
  private nextStmtId = 1;
  /** Commands are answered strictly in order, one at a time, like a real server thread. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly client: ServerConnection,
    connectionId: number,
    private readonly host: SessionHost,
  ) {
    client.on('error', () => this.close());
    client.stream.on('close', () => this.close());
    // A reply is several small packets: without this, Nagle + delayed ACK add ~40 ms stalls.
    client.stream.setNoDelay(true);
    // mysql2 answers "No query handler" or hands SET statements to 'stmt_prepare' unless a listener
    // exists; all commands are taken from the raw 'packet' event, which follows every dispatch.
    for (const ev of DISPATCH_EVENTS) client.on(ev, () => {});
    client.on('packet', (packet: { buffer: Buffer; start: number; end: number }) => {
      const payload = Buffer.from(packet.buffer.subarray(packet.start + 4, packet.end));
      this.queue = this.queue.then(() => this.dispatch(payload)).catch((err: unknown) => this.fail(err));
    });
    client.serverHandshake({
      protocolVersion: 10,
      serverVersion: SERVER_VERSION,
      connectionId,
      statusFlags: ServerStatus.AUTOCOMMIT,
      characterSet: Charset.UTF8MB4_GENERAL_CI,
      capabilityFlags: CAPABILITIES,
      authCallback: (params, done) =>
        void this.authenticate(params, done).catch((err: unknown) => done(null, { code: 1045, message: messageOf(err) })),
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.backend?.destroy();
    this.client.stream.destroy();
    this.host.closed(this);
  }

  private async authenticate(p: AuthParams, done: AuthDone): Promise<void> {
    const scramble = Buffer.concat([p.authPluginData1, p.authPluginData2]);
    if (p.user !== this.host.user || !nativePasswordMatches(this.host.password, scramble, p.authToken)) {
      const usingPassword = p.authToken.length > 0 ? 'YES' : 'NO';
      done(null, { code: 1045, message: `Access denied for user '${p.user}'@'${p.address}' (using password: ${usingPassword})` });
      return;
    }
    try {
      this.backend = await connectBackend(this.host.backend, p.database || undefined);
    } catch (err) {
      done(null, { code: errnoOf(err), message: `tdbctl stand-in: backend unavailable: ${messageOf(err)}` });
      return;
    }
    if (this.closed) return this.backend.destroy();
    // A backend connection that dies takes the client connection with it, so pools reconnect.
    this.backend.on('error', () => this.close());
    done(null);
    this.client.sequenceId = 0; // mysql2 left it after the auth OK; the next command starts at 0
  }

  private async dispatch(payload: Buffer): Promise<void> {
    if (this.closed || !this.backend) return;
    const command = payload[0];
    const text = () => payload.subarray(1).toString('utf8');
    switch (command) {
      case Command.QUERY:
        return this.reply(await this.query(text()));
      case Command.STMT_PREPARE:
        return this.reply(await this.prepare(text()));
      case Command.STMT_EXECUTE:
        return this.reply(await this.execute(payload));
      case Command.STMT_CLOSE:
        this.statements.delete(new Reader(payload, 1).uint(4));
        return this.noReply();
      case Command.STMT_SEND_LONG_DATA:
        return this.noReply(); // unsupported; the following execute fails on the backend
      case Command.STMT_RESET:
        return this.reply([okPayload()]);
      case Command.PING:
        return this.reply(await this.simple((b, cb) => b.ping(cb)));
      case Command.INIT_DB:
        return this.reply(await this.simple((b, cb) => b.query(`USE ${mysql.escapeId(text())}`, cb)));
      case Command.RESET_CONNECTION:
        this.statements.clear();
        return this.reply(await this.simple((b, cb) => b.reset(cb)));
      case Command.SET_OPTION:
        return this.reply([eofPayload()]);
      case Command.QUIT:
        return; // mysql2 ends the stream itself
      default:
        return this.reply([errorPayload(1047, '08S01', 'Unknown command')]);
    }
  }

  /** Writes one complete reply; sequence ids restart at 1 for each reply and 0 for the next command. */
  private reply(payloads: Buffer[]): void {
    if (this.closed) return;
    this.client.sequenceId = 1;
    this.client.stream.cork(); // one TCP segment per reply where possible
    for (const p of payloads) this.client.writePacket(new RawPacket(p));
    this.client.stream.uncork();
    this.client.sequenceId = 0;
  }

  private noReply(): void {
    this.client.sequenceId = 0;
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    this.reply([errorPayload(1105, 'HY000', `tdbctl stand-in: ${messageOf(err)}`)]);
  }

  private async query(sql: string): Promise<Buffer[]> {
    if (GET_PRIMARY.test(sql)) {
      const row = primaryValues(this.host.primary()).map(String);
      return [...resultSetHead(PRIMARY_COLUMNS), textRowPayload(row), eofPayload()];
    }
    // Raw bytes per value, so text results are relayed byte for byte.
    const options: QueryOptions = { sql, rowsAsArray: true, typeCast: (field) => field.buffer() };
    return this.relay((b, cb) => b.query(options, cb), false);
  }

  private async prepare(sql: string): Promise<Buffer[]> {
    const id = this.nextStmtId++;
    if (GET_PRIMARY.test(sql)) {
      this.statements.set(id, { sql, local: true, paramCount: 0 });
      return [prepareOkPayload(id, PRIMARY_COLUMNS.length, 0), ...definitions(PRIMARY_COLUMNS)];
    }
    const backend = this.backend!;
    try {
      // mysql2 caches the backend statement per SQL text; it is closed with the backend connection.
      const stmt = await new Promise<BackendStatement>((resolve, reject) =>
        backend.prepare(sql, (err, s) => (err ? reject(err) : resolve(s as unknown as BackendStatement))),
      );
      const params = stmt.parameters.map(toColumnDef);
      const columns = stmt.columns.map(toColumnDef);
      this.statements.set(id, { sql, local: false, paramCount: params.length });
      return [prepareOkPayload(id, columns.length, params.length), ...definitions(params), ...definitions(columns)];
    } catch (err) {
      return [errorReply(err)];
    }
  }

  private async execute(payload: Buffer): Promise<Buffer[]> {
    let req: ExecuteRequest;
    try {
      req = parseExecute(
        payload,
        (id) => this.statements.get(id)?.paramCount,
        (id) => this.statements.get(id)?.types,
      );
    } catch (err) {
      if (err instanceof UnknownStatementError) return [errorPayload(1243, 'HY000', err.message)];
      throw err;
    }
    const stmt = this.statements.get(req.stmtId)!;
    stmt.types = req.types;
    if (stmt.local) {
      const row = primaryValues(this.host.primary());
      return [...resultSetHead(PRIMARY_COLUMNS), binaryRowPayload(PRIMARY_COLUMNS, row), eofPayload()];
    }
    return this.relay((b, cb) => b.execute({ sql: stmt.sql, values: req.values }, cb), true);
  }

  /** Runs one backend call and turns its outcome into the reply packets for the client. */
  private async relay(call: (b: mysql.Connection, cb: BackendCallback) => void, binary: boolean): Promise<Buffer[]> {
    let outcome: [unknown, FieldPacket[] | undefined];
    try {
      outcome = await new Promise((resolve, reject) =>
        call(this.backend!, (err, result, fields) => (err ? reject(err) : resolve([result, fields]))),
      );
    } catch (err) {
      return [errorReply(err)];
    }
    const [result, fields] = outcome;
    if (!fields) return [okReply(result as ResultSetHeader)];
    if (fields.some((f) => Array.isArray(f))) {
      return [errorPayload(1235, '42000', 'tdbctl stand-in relays only one result set per statement')];
    }
    const columns = fields.map(toColumnDef);
    const rows = result as unknown[][];
    const encode = binary ? (r: unknown[]) => binaryRowPayload(columns, r) : (r: unknown[]) => textRowPayload(r as (Buffer | null)[]);
    return [...resultSetHead(columns), ...rows.map(encode), eofPayload()];
  }

  private async simple(call: (b: mysql.Connection, cb: (err: unknown) => void) => void): Promise<Buffer[]> {
    try {
      await new Promise<void>((resolve, reject) => call(this.backend!, (err) => (err ? reject(err) : resolve())));
      return [okPayload()];
    } catch (err) {
      return [errorReply(err)];
    }
  }
}

type BackendCallback = (err: unknown, result?: unknown, fields?: FieldPacket[]) => void;

/** The runtime shape of mysql2's prepared statement (its typings omit the metadata). */
interface BackendStatement {
  columns: FieldPacket[];
  parameters: FieldPacket[];
}

function connectBackend(b: TdbctlStandInOptions['backend'], database: string | undefined): Promise<mysql.Connection> {
  const conn = mysql.createConnection({
    host: b.host,
    port: b.port,
    user: b.user,
    password: b.password,
    database,
    charset: 'UTF8MB4_GENERAL_CI',
    // Values come back in a form that re-encodes losslessly into binary-protocol rows.
    rowsAsArray: true,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    jsonStrings: true,
    decimalNumbers: false,
    typeCast: (field, next) => (field.type === 'GEOMETRY' ? field.buffer() : next()),
  });
  return new Promise((resolve, reject) =>
    conn.connect((err) => {
      if (!err) return resolve(conn);
      conn.destroy();
      reject(err);
    }),
  );
}

/** Parameter or column definitions followed by their EOF; nothing when there are none. */
function definitions(cols: readonly ColumnDef[]): Buffer[] {
  return cols.length === 0 ? [] : [...cols.map(columnDefPayload), eofPayload()];
}

function toColumnDef(f: FieldPacket): ColumnDef {
  const m = f as unknown as ColumnDef & { db?: string; extendedFormat?: string };
  return {
    schema: m.schema ?? m.db ?? '',
    table: m.table ?? '',
    orgTable: m.orgTable ?? '',
    name: m.name,
    orgName: m.orgName ?? '',
    characterSet: m.characterSet,
    columnLength: m.columnLength,
    // MariaDB marks JSON only in extended metadata, which the stand-in does not offer; tdbctl
    // (MySQL 5.7) sends the JSON type, so clients parse such values the same way.
    columnType: m.extendedFormat === 'json' ? Type.JSON : m.columnType,
    flags: m.flags,
    decimals: m.decimals,
  };
}

function okReply(h: ResultSetHeader): Buffer {
  return okPayload({
    affectedRows: h.affectedRows,
    insertId: h.insertId,
    // only one result is relayed, so "more results" must not leak through
    serverStatus: (h.serverStatus ?? ServerStatus.AUTOCOMMIT) & ~ServerStatus.MORE_RESULTS_EXISTS,
    warningCount: h.warningStatus,
    info: h.info,
  });
}

function errorReply(err: unknown): Buffer {
  const e = err as { sqlState?: string; sqlMessage?: string };
  return errorPayload(errnoOf(err), e.sqlState ?? 'HY000', e.sqlMessage ?? messageOf(err));
}

/** The server's error number, or CR_SERVER_LOST for client-side failures such as a dead backend. */
function errnoOf(err: unknown): number {
  const errno = (err as { errno?: unknown }).errno;
  return typeof errno === 'number' && errno > 0 && errno < 0x10000 ? errno : 2013;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
