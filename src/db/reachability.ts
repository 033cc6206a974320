// Whether an instance's error means the agent cannot work with it at all: the server cannot be
// reached (nothing listens, no route, it hangs, it is shutting down, it has no connection left) or
// it refuses the agent's login. Anything else (a missing privilege on one table, a missing table,
// a deadlock …) leaves the instance served and is a warning. /healthz, host `status` and the
// `spiderbackup_instance_up` gauge judge by this one rule.
export type Unreachable = { kind: 'unreachable' | 'login-refused'; code: string };

/** Node's socket errors and mysql2's own: the server is not there, or does not answer. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ETIMEDOUT',
  'ECONNRESET',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  // A statement unanswered past the query timeout: a hung server, as good as gone.
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);

/** Server errors (by errno: MariaDB and MySQL disagree on some names) that keep the agent out. */
const UNREACHABLE_ERRNOS = new Map<number, string>([
  [1040, 'ER_CON_COUNT_ERROR'], // too many connections
  [1053, 'ER_SERVER_SHUTDOWN'],
  [1077, 'ER_NORMAL_SHUTDOWN'],
]);

const LOGIN_REFUSED_ERRNOS = new Map<number, string>([
  [1045, 'ER_ACCESS_DENIED_ERROR'], // wrong user or password
  [1698, 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR'],
  [1129, 'ER_HOST_IS_BLOCKED'],
  [1130, 'ER_HOST_NOT_PRIVILEGED'],
  [1251, 'ER_NOT_SUPPORTED_AUTH_MODE'],
  [1820, 'ER_MUST_CHANGE_PASSWORD'],
  [1862, 'ER_MUST_CHANGE_PASSWORD_LOGIN'],
  [3118, 'ER_ACCOUNT_HAS_BEEN_LOCKED'], // MySQL
  [4151, 'ER_ACCOUNT_HAS_BEEN_LOCKED'], // MariaDB
]);

const LOGIN_REFUSED_CODES = new Set(LOGIN_REFUSED_ERRNOS.values());
const UNREACHABLE_SERVER_CODES = new Set(UNREACHABLE_ERRNOS.values());

/** The error's code and errno: on the error itself, or on what it wraps (our InstanceError wraps the driver's). */
function codesOf(err: unknown): { codes: string[]; errnos: number[] } {
  const codes: string[] = [];
  const errnos: number[] = [];
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth++) {
    const { code, errno } = e as { code?: unknown; errno?: unknown };
    if (typeof code === 'string') codes.push(code);
    if (typeof errno === 'number') errnos.push(errno);
    e = (e as { cause?: unknown }).cause;
  }
  return { codes, errnos };
}

/** How the agent is kept out of the instance, or undefined when the error is not of that kind. */
export function unreachableOf(err: unknown): Unreachable | undefined {
  const { codes, errnos } = codesOf(err);
  for (const n of errnos) {
    const refused = LOGIN_REFUSED_ERRNOS.get(n);
    if (refused !== undefined) return { kind: 'login-refused', code: refused };
    const gone = UNREACHABLE_ERRNOS.get(n);
    if (gone !== undefined) return { kind: 'unreachable', code: gone };
  }
  for (const c of codes) {
    if (LOGIN_REFUSED_CODES.has(c)) return { kind: 'login-refused', code: c };
    if (UNREACHABLE_CODES.has(c) || UNREACHABLE_SERVER_CODES.has(c)) return { kind: 'unreachable', code: c };
  }
  return undefined;
}

/** The words for an operator: "cannot be reached (ECONNREFUSED)", "refuses the agent's login (ER_ACCESS_DENIED_ERROR)". */
export function describeUnreachable(u: Unreachable): string {
  return `${u.kind === 'login-refused' ? "refuses the agent's login" : 'cannot be reached'} (${u.code})`;
}
