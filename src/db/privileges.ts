// A refused statement, said as the privilege it lacks and the feature that needs it, so an operator
// sees "missing privilege INSERT on infodba_schema.spiderbackup_presence (…)" instead of a bare
// server error. The privileges per feature are listed in README "Privileges".
import { InstanceError } from '../errors.js';

export type Feature = 'presence' | 'tasks' | 'purge' | 'lag' | 'schedule' | 'cluster-pause';

const NEEDED_FOR: Record<Feature, string> = {
  presence: "the agent's presence (infodba_schema.spiderbackup_presence)",
  tasks: 'reading, claiming and finishing tasks (infodba_schema.global_backup)',
  purge: 'purging rows over 30 days without binlogging them',
  lag: 'reading replication lag',
  schedule: 'scheduling a backup',
  'cluster-pause': 'seeing a cluster-wide pause (infodba_schema.spiderbackup_cluster_pause)',
};

/** The server's error code and message, from our InstanceError or a driver error. */
function serverError(err: unknown): { code: string; message: string } | undefined {
  const e = err instanceof InstanceError ? ((err.cause as object | undefined) ?? err) : err;
  const code = (e as { code?: unknown }).code ?? (err as { code?: unknown }).code;
  const message = (e as { sqlMessage?: unknown }).sqlMessage ?? (e as { message?: unknown }).message;
  return typeof code === 'string' && typeof message === 'string' ? { code, message } : undefined;
}

/**
 * "missing privilege X on Y (needed for …)" when `err` is a privilege refusal, else undefined.
 * The user is the drop-in's MysqlUser; the grant names the object as the server did.
 */
export function missingPrivilege(err: unknown, feature: Feature): string | undefined {
  const e = serverError(err);
  if (!e) return undefined;
  const why = `needed for ${NEEDED_FOR[feature]}`;
  switch (e.code) {
    case 'ER_TABLEACCESS_DENIED_ERROR':
    case 'ER_COLUMNACCESS_DENIED_ERROR': {
      // "INSERT, UPDATE command denied to user 'u'@'h' for table `db`.`t`" (MariaDB: the statement's
      // privileges, one or more of them missing) / "… for table 't'" (MySQL)
      const m = /^([A-Z][A-Z_ ,]*?) command denied to user .* for table (\S+)/.exec(e.message);
      if (!m) break;
      return `missing privilege ${m[1]} on ${(m[2] as string).replace(/[`']/g, '')} (${why})`;
    }
    case 'ER_DBACCESS_DENIED_ERROR': {
      const m = /to database '([^']+)'/.exec(e.message);
      return `missing privilege on database ${m ? m[1] : '?'} (CREATE, to create the table where it is missing; ${why})`;
    }
    case 'ER_SPECIFIC_ACCESS_DENIED_ERROR': {
      // "Access denied; you need (at least one of) the SUPER, BINLOG ADMIN privilege(s) for this operation"
      const m = /the (.+?) privilege\(s\)/.exec(e.message);
      return `missing privilege ${m ? (m[1] as string).split(/,\s*/).join(' or ') : '(unknown)'} (${why})`;
    }
    case 'ER_OPTION_PREVENTS_STATEMENT':
      if (/read-only|read_only/i.test(e.message))
        return `missing privilege READ_ONLY ADMIN (or SUPER): the instance is read_only and refuses the write (${why})`;
      break;
  }
  return undefined;
}
