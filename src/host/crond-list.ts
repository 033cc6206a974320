// mysql-crond's job list (`./mysql-crond list`, bk-dbm dbm-services/mysql/db-tools/mysql-crond) read
// as data, and which of the old tool's two jobs are still live or will come back on this host. Pure:
// src/host/crond.ts runs the command.

/** One row of the list. Columns a version does not print are undefined. */
export interface CrondJob {
  id: string;
  name: string | undefined;
  schedule: string | undefined;
  command: string | undefined;
  args: string | undefined;
  enable: boolean | undefined;
  nextTime: string | undefined;
}

/** The names the seed registers the jobs under (`./mysql-crond addJob --name …`). */
export const OLD_JOBS = {
  check: 'spiderbackup-check',
  schedule: 'spiderbackup-schedule',
} as const;

export type OldJobKind = keyof typeof OLD_JOBS;

export interface CrondFinding {
  kind: OldJobKind;
  /** The job's name as listed (or the old job's name when the list has no name column). */
  name: string;
  /** `live`: enabled; `paused`: a pause-job that ends at `until`; `disabled`: off, but still registered. */
  state: 'live' | 'paused' | 'disabled';
  until?: string;
  /** One line for the log and `status`. */
  message: string;
}

/** Column names as tablewriter prints them in the known versions, normalised (see key()). */
const COLUMNS: Record<string, keyof CrondJob> = {
  id: 'id',
  jobname: 'name',
  name: 'name',
  schedule: 'schedule',
  command: 'command',
  args: 'args',
  enable: 'enable',
  enabled: 'enable',
  nexttime: 'nextTime',
};

// Older tablewriter upper-cases headers and turns "_" into spaces ("JOB NAME", "NEXT TIME").
const key = (header: string): string => header.toLowerCase().replace(/[^a-z0-9]/g, '');

const cellsOf = (line: string): string[] =>
  line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((c) => c.trim());

/**
 * The rows of a tablewriter table, by the header row's column names; undefined when the text is
 * not such a table (no header with an ID column). A cell wrapped onto a further line (tablewriter
 * wraps long cells: that line has an empty ID) is joined to its row.
 */
export function parseCrondList(text: string): CrondJob[] | undefined {
  const rows = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.startsWith('|') && l.endsWith('|'));
  const header = rows[0];
  if (header === undefined) return undefined;
  const fields = cellsOf(header).map((h) => COLUMNS[key(h)]);
  if (!fields.includes('id')) return undefined;
  const jobs: CrondJob[] = [];
  for (const row of rows.slice(1)) {
    const cells = cellsOf(row);
    if (cells.length !== fields.length) return undefined;
    const raw: Partial<Record<keyof CrondJob, string>> = {};
    fields.forEach((f, i) => {
      if (f !== undefined) raw[f] = cells[i];
    });
    const last = jobs[jobs.length - 1];
    if (raw.id === '' && last !== undefined) {
      for (const f of ['name', 'schedule', 'command', 'args'] as const) {
        const more = raw[f];
        if (more) last[f] = `${last[f] ?? ''}${more}`;
      }
      continue;
    }
    jobs.push({
      id: raw.id ?? '',
      name: raw.name || undefined,
      schedule: raw.schedule || undefined,
      command: raw.command || undefined,
      args: raw.args || undefined,
      enable: raw.enable === undefined ? undefined : /^true$/i.test(raw.enable) ? true : /^false$/i.test(raw.enable) ? false : undefined,
      nextTime: raw.nextTime || undefined,
    });
  }
  return jobs;
}

/** Which old job a row is: by the seed's name, else by its arguments (`spiderbackup,check,--run`). */
export function oldJobOf(job: CrondJob): OldJobKind | undefined {
  if (job.name === OLD_JOBS.check) return 'check';
  if (job.name === OLD_JOBS.schedule) return 'schedule';
  const words = `${job.command ?? ''} ${job.args ?? ''}`.split(/[\s,[\]]+/).filter((w) => w !== '');
  const at = words.indexOf('spiderbackup');
  if (at === -1) return undefined;
  const sub = words[at + 1];
  return sub === 'check' || sub === 'schedule' ? sub : undefined;
}

const WHAT: Record<OldJobKind, string> = {
  check: 'runs the old per-host step beside the agent',
  schedule: 'schedules a second nightly backup beside the agent',
};

/**
 * The old jobs still registered and live, or off for now but coming back: a pause-job ends by
 * itself (its NextTime), and a disable-job without --permanent is undone when mysql-crond
 * restarts (the list cannot tell a permanent one apart: delJob is the sure way).
 */
export function judgeCrondJobs(jobs: readonly CrondJob[], now: Date): CrondFinding[] {
  const found: CrondFinding[] = [];
  for (const job of jobs) {
    const kind = oldJobOf(job);
    if (kind === undefined) continue;
    const name = job.name ?? OLD_JOBS[kind];
    const del = `./mysql-crond delJob --name ${name} -c runtime.yaml`;
    if (job.enable !== false) {
      found.push({ kind, name, state: 'live', message: `mysql-crond job ${name} is still enabled: it ${WHAT[kind]}; remove it: ${del}` });
      continue;
    }
    const until = job.nextTime !== undefined && Number.isFinite(Date.parse(job.nextTime)) ? job.nextTime : undefined;
    if (until !== undefined && Date.parse(until) > now.getTime()) {
      found.push({
        kind,
        name,
        state: 'paused',
        until,
        message: `mysql-crond job ${name} is only paused: it comes back at ${until} and ${WHAT[kind]}; remove it: ${del}`,
      });
      continue;
    }
    found.push({
      kind,
      name,
      state: 'disabled',
      message:
        `mysql-crond job ${name} is disabled but still registered: unless disabled with --permanent it comes back when ` +
        `mysql-crond restarts and ${WHAT[kind]}; remove it: ${del}`,
    });
  }
  return found;
}
