/**
 * TEST STAND-IN for TenDB Cluster's tdbctl control node. NOT a real tdbctl.
 *
 * The integration tests and the sandbox run on MariaDB, which has no tdbctl and in particular no
 * `tdbctl get primary` statement. This stand-in is a MySQL-protocol server on mysql2's own server
 * API that takes what spiderbackup sends a tdbctl node - text queries - and answers
 * `tdbctl get primary` itself, from settings the test controls (see
 * {@link TdbctlStandIn.setPrimary}). Every other text query goes to a backing MariaDB that holds
 * the mysql.servers entries a tdbctl node would list; its rows, OK packets and errors are relayed.
 * The routing statements `spiderbackup restore` runs on a target tdbctl (src/sql/restore-target.ts:
 * `REPLACE INTO mysql.servers …`, then `TDBCTL FLUSH ROUTING`) are recorded in
 * {@link TdbctlStandIn.routing}; the flush is answered OK here (it pushes nothing to the spider
 * nodes, which the restore routes itself).
 *
 * Limits, fine for tests: text queries (and COM_INIT_DB) only, prepared statements and other
 * commands get an error; one result set per query; values relayed as UTF-8 text (binary values
 * that are not UTF-8 are not byte-exact); no SQLSTATE (mysql2 writes a placeholder); no TLS.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type net from 'node:net';
import mysql from 'mysql2';
import type { FieldPacket, ResultSetHeader } from 'mysql2';
import mysqlPromise from 'mysql2/promise';

export interface TdbctlStandInOptions {
  /** Listen address; default 127.0.0.1. */
  host?: string;
  port: number;
  /** The only user accepted; its password is checked (mysql_native_password). */
  user: string;
  password: string;
  /** The backing MariaDB every query but `tdbctl get primary` goes to. */
  backend: { host: string; port: number; user: string; password: string };
  /** SERVER_NAME reported by `tdbctl get primary`; default TDBCTL0. */
  serverName?: string;
}

export type PrimaryRow = { SERVER_NAME: string; HOST: string; PORT: number; IS_THIS_SERVER: number };

export class TdbctlStandIn {
  readonly host: string;
  readonly port: number;
  private isThisPrimary = true;
  /** The routing statements received, in order (passwords included: a test's own). */
  readonly routing: string[] = [];
  private listener: net.Server | undefined;
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

  /** Listens on host:port. Rejects (e.g. EADDRINUSE) instead of crashing the process. */
  async start(): Promise<void> {
    if (this.listener) return;
    const server = mysql.createServer((conn) => this.accept(conn as ServerConnection));
    // mysql2's Server neither forwards its net.Server's listen errors nor takes a listen callback.
    const listener = (server as unknown as { _server: net.Server })._server;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(this.port, this.host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    this.listener = listener;
  }

  /** Simulates an outage: stops listening and drops every client connection. */
  async stop(): Promise<void> {
    const listener = this.listener;
    if (!listener) return;
    this.listener = undefined;
    const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
    for (const s of [...this.sessions]) s.close();
    await closed;
  }

  close(): Promise<void> {
    return this.stop();
  }

  private accept(conn: ServerConnection): void {
    const session = new Session(conn, this.nextConnectionId++, {
      ...this.opts,
      primary: () => this.primary(),
      routed: (sql) => this.routing.push(sql.trim()),
      closed: (s) => this.sessions.delete(s),
    });
    this.sessions.add(session);
  }
}

// ---------------------------------------------------------------- one client connection

/** mysql2's server-side connection; its typings omit these members of the runtime object. */
type ServerConnection = mysql.Connection & {
  stream: net.Socket;
  writeColumns(columns: readonly object[]): void;
  writeTextRow(values: readonly unknown[]): void;
};

/** What mysql2 hands the authCallback: the client's login and the scramble it answered. */
type AuthParams = { user: string; address: string; database?: string; authPluginData1: Buffer; authPluginData2: Buffer; authToken: Buffer };
/** An error for the client instead of the OK; mysql2 then closes the connection. */
type Refusal = { code: number; message: string };

type SessionHost = Pick<TdbctlStandInOptions, 'user' | 'password' | 'backend'> & {
  primary(): PrimaryRow;
  routed(sql: string): void;
  closed(session: Session): void;
};

// CLIENT_* capabilities offered: LONG_PASSWORD, FOUND_ROWS (mysql2 clients ask for it), LONG_FLAG,
// CONNECT_WITH_DB, PROTOCOL_41, TRANSACTIONS, SECURE_CONNECTION, PLUGIN_AUTH and
// PLUGIN_AUTH_LENENC_CLIENT_DATA. Deliberately not: DEPRECATE_EOF (mysql2 writes EOF packets), SSL,
// COMPRESS, SESSION_TRACK, QUERY_ATTRIBUTES, MULTI_STATEMENTS.
const CAPABILITIES = 0x1 | 0x2 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000 | 0x200000;

const COM_INIT_DB = 0x02;
const COM_QUERY = 0x03;
/** Commands mysql2 answers itself (PING, FIELD_LIST) or that take no reply (QUIT, STMT_CLOSE). */
const NOT_OURS = new Set([0x01, 0x04, 0x0e, 0x19]);

/** What real tdbctl (MySQL 5.7 based) reports; not "MariaDB", so clients use MySQL behaviour. */
const SERVER_VERSION = '5.7.20-tdbctl-stand-in';

const GET_PRIMARY = /^\s*tdbctl\s+get\s+primary\s*;?\s*$/i;
const FLUSH_ROUTING = /^\s*tdbctl\s+flush\s+routing\s*;?\s*$/i;
const ROUTE_WRITE = /^\s*(replace|insert)\s+into\s+mysql\.servers\b/i;

const PRIMARY_COLUMNS = [
  column('SERVER_NAME', mysql.Types.VAR_STRING, mysql.Charsets.UTF8MB4_GENERAL_CI, 256),
  column('HOST', mysql.Types.VAR_STRING, mysql.Charsets.UTF8MB4_GENERAL_CI, 256),
  column('PORT', mysql.Types.LONG, mysql.Charsets.BINARY, 11),
  column('IS_THIS_SERVER', mysql.Types.LONG, mysql.Charsets.BINARY, 11),
];

/** A column definition in the shape mysql2's `writeColumns` encodes. */
function column(name: string, columnType: number, characterSet: number, columnLength: number) {
  const flags = characterSet === mysql.Charsets.BINARY ? 0x0081 : 0x0001; // NOT_NULL, and BINARY for numbers
  const unnamed = { catalog: 'def', schema: '', table: '', orgTable: '', decimals: 0 };
  return { ...unnamed, name, orgName: name, characterSet, columnLength, columnType, flags };
}

class Session {
  private backend: mysqlPromise.Connection | undefined;
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
    // mysql2 raises a text query as 'query', or as 'stmt_prepare' / 'stmt_execute' when its first
    // word is SET, PREPARE or EXECUTE - the events of a binary COM_STMT_PREPARE / _EXECUTE too. The
    // 'packet' event after every command names the command, so each is answered from there.
    let next: [sql: string, values?: string[]] | undefined;
    client.on('query', (sql: string) => (next = [sql]));
    client.on('stmt_prepare', (sql: string) => (next = [sql]));
    client.on('stmt_execute', (...args: unknown[]) => (next = typeof args[4] === 'string' ? [args[4]] : undefined));
    client.on('init_db', (schema: string) => (next = ['USE ??', [schema]])); // the mariadb client's `use`
    client.on('packet', (_packet: unknown, _known: boolean, command: number) => {
      const stashed = next;
      next = undefined;
      if (stashed && (command === COM_QUERY || command === COM_INIT_DB)) this.enqueue(() => this.query(...stashed));
      else if (!NOT_OURS.has(command)) this.enqueue(() => this.refuse(command));
    });
    client.serverHandshake({
      protocolVersion: 10,
      serverVersion: SERVER_VERSION,
      connectionId,
      statusFlags: 0x0002, // SERVER_STATUS_AUTOCOMMIT
      characterSet: mysql.Charsets.UTF8MB4_GENERAL_CI,
      capabilityFlags: CAPABILITIES,
      authCallback: (p: AuthParams, done: (err: null, refusal?: Refusal) => void) =>
        void this.authenticate(p).then(
          (refusal) => this.authenticated(done, refusal),
          (err: unknown) => this.authenticated(done, { code: 1045, message: messageOf(err) }),
        ),
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.backend?.destroy();
    this.client.stream.destroy();
    this.host.closed(this);
  }

  /** Checks the login and opens this session's backend connection; a refusal says why not. */
  private async authenticate(p: AuthParams): Promise<Refusal | undefined> {
    const scramble = Buffer.concat([p.authPluginData1, p.authPluginData2]);
    if (p.user !== this.host.user || !nativePasswordMatches(this.host.password, scramble, p.authToken)) {
      const usingPassword = p.authToken.length > 0 ? 'YES' : 'NO';
      return { code: 1045, message: `Access denied for user '${p.user}'@'${p.address}' (using password: ${usingPassword})` };
    }
    try {
      const database = p.database || undefined;
      this.backend = await mysqlPromise.createConnection({ ...this.host.backend, database, charset: 'UTF8MB4_GENERAL_CI' });
    } catch (err) {
      return { code: errnoOf(err), message: `tdbctl stand-in: backend unavailable: ${messageOf(err)}` };
    }
    if (this.closed) this.backend.destroy(); // the client left while the backend was connecting
    // A backend connection that dies takes the client connection with it, so pools reconnect.
    this.backend.on('error', () => this.close());
    return undefined;
  }

  private authenticated(done: (err: null, refusal?: Refusal) => void, refusal: Refusal | undefined): void {
    if (this.closed) return;
    done(null, refusal); // mysql2 writes the OK or the error (and then closes)
    this.client.sequenceId = 0; // mysql2 leaves it after the auth reply; the next command starts at 0
  }

  private enqueue(step: () => Promise<void> | void): void {
    this.queue = this.queue
      .then(step)
      .catch((err: unknown) => this.reply((c) => c.writeError({ code: 1105, message: `tdbctl stand-in: ${messageOf(err)}` })));
  }

  /** Writes one complete reply: its packets are numbered from 1, the client's next command from 0. */
  private reply(write: (c: ServerConnection) => void): void {
    if (this.closed) return;
    const c = this.client;
    c.sequenceId = 1;
    c.stream.cork(); // one TCP segment per reply where possible
    write(c);
    c.stream.uncork();
    c.sequenceId = 0;
  }

  private refuse(command: number): void {
    const message = `tdbctl stand-in: only text queries (COM_QUERY) are supported, not command 0x${command.toString(16)}`;
    this.reply((c) => c.writeError({ code: 1047, message })); // ER_UNKNOWN_COM_ERROR
  }

  private async query(sql: string, values?: string[]): Promise<void> {
    if (this.closed || !this.backend) return;
    if (GET_PRIMARY.test(sql)) return this.reply((c) => c.writeTextResult([this.host.primary()], PRIMARY_COLUMNS));
    if (FLUSH_ROUTING.test(sql)) {
      this.host.routed(sql);
      return this.reply((c) => c.writeOk({ affectedRows: 0, insertId: 0, serverStatus: 0x0002, warningCount: 0 }));
    }
    if (ROUTE_WRITE.test(sql)) this.host.routed(sql);
    let result: unknown;
    let fields: FieldPacket[] | undefined;
    try {
      // Every value as its text, so it goes back out as the text the backend sent.
      [result, fields] = await this.backend.query({ sql, values, rowsAsArray: true, typeCast: (field) => field.string('utf8') });
    } catch (err) {
      return this.reply((c) => c.writeError({ code: errnoOf(err), message: messageOf(err) }));
    }
    if (!fields) {
      const { affectedRows, insertId, serverStatus, warningStatus: warningCount } = result as ResultSetHeader;
      return this.reply((c) => c.writeOk({ affectedRows, insertId, serverStatus, warningCount }));
    }
    // Several results (a CALL) come as arrays of arrays; a lone OK cannot announce more results.
    if (fields.some((f) => Array.isArray(f))) {
      return this.reply((c) => c.writeError({ code: 1235, message: 'tdbctl stand-in relays only one result set per query' }));
    }
    this.reply((c) => {
      c.writeColumns(fields);
      for (const row of result as unknown[][]) c.writeTextRow(row);
      c.writeEof();
    });
  }
}

/** Checks a mysql_native_password token: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))). */
function nativePasswordMatches(password: string, scramble: Buffer, token: Buffer): boolean {
  if (password === '') return token.length === 0;
  const sha1 = (...parts: Buffer[]) => parts.reduce((h, p) => h.update(p), createHash('sha1')).digest();
  const stage1 = sha1(Buffer.from(password, 'utf8'));
  const mask = sha1(scramble, sha1(stage1));
  const expected = Buffer.from(stage1.map((b, i) => b ^ mask[i]!));
  return token.length === expected.length && timingSafeEqual(token, expected);
}

/** The server's error number, or CR_SERVER_LOST for client-side failures such as a dead backend. */
function errnoOf(err: unknown): number {
  const errno = (err as { errno?: unknown }).errno;
  return typeof errno === 'number' && errno > 0 && errno < 0x10000 ? errno : 2013;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
