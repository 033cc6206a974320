// What `spiderbackup restore` checks before it writes anything (issue 20 item 4), each problem one
// line naming the instance, the object or the file: the source objects present and decryptable,
// the targets reachable with their login, empty (unless scratch), served by an agent (never one that
// archives a scratch target), with room where that can be told from here, and no other open restore
// onto any of them.
import { statfs } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { mapLimited } from '../cluster/reach.js';
import { withConnection, isNoSuchTable, type ConnectOptions } from '../db/connect.js';
import { errorMessage } from '../errors.js';
import { formatBytes } from '../format.js';
import { download, instanceKey, type Repository } from '../repo/repository.js';
import { checkRepoInstance } from '../restore/repo-files.js';
import { PRESENCE_TABLE, SCHEMA } from '../sql/ddl.js';
import { getPresence } from '../sql/presence.js';
import { datadirOf, userSchemas } from '../sql/recovery.js';
import { describeTarget, openRestores, readDocument, recordKey, type Address, type RestoreRecord, type RestoreSource } from './job.js';
import { readPasswordFile, type TargetInstance } from './target-file.js';

export interface CheckResult {
  problems: string[];
  /** Not problems: what could not be told from here, what scratch will wipe. */
  notes: string[];
}

/** An agent's presence row older than this (and 3 of its ticks) is not an agent serving the instance now. */
const FRESH_S = 60;

export interface TargetToCheck {
  inst: TargetInstance;
  /** "master of shard 0", "spider node" … */
  what: string;
  /** Must hold no schema but the system ones (false on --resume: a finished task's instance holds the data). */
  empty: boolean;
  /** Bytes its restore needs at least (its backup's), for the free-disk check. */
  bytes: number;
}

/** Every target: reachable with its login, empty (unless `scratch`), its agent's presence fresh, its disk. */
export async function checkTargets(
  targets: readonly TargetToCheck[],
  file: string,
  scratch: boolean,
  opts: ConnectOptions,
): Promise<CheckResult> {
  const out: CheckResult = { problems: [], notes: [] };
  const results = await mapLimited(targets, 8, (t) => checkTarget(t, file, scratch, opts));
  for (const r of results) {
    out.problems.push(...r.problems);
    out.notes.push(...r.notes);
  }
  return out;
}

async function checkTarget(t: TargetToCheck, file: string, scratch: boolean, opts: ConnectOptions): Promise<CheckResult> {
  const out: CheckResult = { problems: [], notes: [] };
  const who = `${describeTarget(t.inst)} (${t.what} in ${file})`;
  let password: string;
  try {
    password = readPasswordFile(t.inst.passwordFile);
  } catch (err) {
    out.problems.push(`${who}: its password_file ${t.inst.passwordFile} cannot be read: ${errorMessage(err)}`);
    return out;
  }
  try {
    await withConnection(
      { host: t.inst.host, port: t.inst.port, user: t.inst.user, password },
      async (c) => {
        if (t.empty) {
          const schemas = await userSchemas(c);
          if (schemas.length > 0 && !scratch)
            out.problems.push(
              `${who}: not empty: it holds ${schemas.join(', ')}; restore onto empty instances, or say "scratch": true in ${file} to have it wiped first`,
            );
          else if (schemas.length > 0) out.notes.push(`${who}: scratch: ${schemas.join(', ')} will be wiped`);
        }
        let presence;
        try {
          presence = await getPresence(c, t.inst.host, t.inst.port);
        } catch (err) {
          if (!isNoSuchTable(err)) throw err;
        }
        if (!presence)
          out.problems.push(
            `${who}: no agent serves it (no row for it in its ${SCHEMA}.${PRESENCE_TABLE}): run an agent on its host with a drop-in for it and this repository`,
          );
        else if (presence.ageS > Math.max(FRESH_S, (3 * presence.tickIntervalMs) / 1000))
          out.problems.push(
            `${who}: its agent (pid ${presence.agentPid} on ${presence.agentHost}) last reported ${presence.ageS} s ago: is it running?`,
          );
        // A scratch instance's binlogs (its wipe, the load, a drill's replay) would land in the
        // source shard's archive, which later restore plans read.
        if (scratch && presence?.archive)
          out.problems.push(
            `${who}: scratch, but its agent (pid ${presence.agentPid} on ${presence.agentHost}) archives its binlogs into the repository: ` +
              `a scratch target must never be archived; set [archive] binlogs = off in the agent config on ${presence.agentHost}`,
          );
        const datadir = await datadirOf(c);
        out.notes.push(...(await diskNote(t, who, datadir, out.problems)));
      },
      opts,
    );
  } catch (err) {
    out.problems.push(`${who}: cannot be used as user '${t.inst.user}': ${errorMessage(err)}`);
  }
  return out;
}

/** Addresses of this host: a target on one of them has its datadir here, where its free space can be read. */
function localAddresses(): Set<string> {
  const out = new Set(['localhost']);
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

async function diskNote(t: TargetToCheck, who: string, datadir: string, problems: string[]): Promise<string[]> {
  const local = localAddresses().has(t.inst.host) || t.inst.host.startsWith('127.');
  if (!local || datadir === '')
    return [
      `${who}: free disk not known from here (its datadir ${datadir || '?'} is on its own host): it needs more than ${formatBytes(t.bytes)}`,
    ];
  try {
    const s = await statfs(datadir);
    const free = s.bavail * s.bsize;
    if (free < t.bytes) problems.push(`${who}: ${formatBytes(free)} free under ${datadir}, its backup alone is ${formatBytes(t.bytes)}`);
    return [];
  } catch (err) {
    return [`${who}: free disk under ${datadir} not known: ${errorMessage(err)}`];
  }
}

/** One source backup to check in the repository. */
export interface SourceToCheck {
  label: string;
  source: RestoreSource;
}

/**
 * Every source backup's objects there with their size and sha256; where this host has the key,
 * the first bytes of its first object read through the decryption (cheap; a wrong key fails there).
 */
export async function checkSources(repo: Repository, sources: readonly SourceToCheck[]): Promise<CheckResult> {
  const out: CheckResult = { problems: [], notes: [] };
  for (const s of sources) {
    const { backupId, host, port, manifestSha256 } = s.source;
    const check = await checkRepoInstance(repo, backupId, host, port, manifestSha256);
    out.problems.push(...check.problems.map((p) => `${s.label}: ${p}`));
    out.notes.push(...check.warnings.map((w) => `${s.label}: ${w}`));
    const m = check.manifest?.manifest;
    const first = m?.files[0];
    if (!check.ok || !m?.encryption || !first || !repo.keys.some((k) => k.id === m.encryption?.keyId)) continue;
    const key = `${instanceKey(repo, backupId, host, port)}${first.name}`;
    try {
      await readFirstChunk(await download(repo, key, { encrypted: true }));
    } catch (err) {
      out.problems.push(`${s.label}: ${key} cannot be decrypted with this host's key ${m.encryption.keyId}: ${errorMessage(err)}`);
    }
  }
  return out;
}

async function readFirstChunk(stream: NodeJS.ReadableStream & { destroy(): void }): Promise<void> {
  try {
    for await (const _chunk of stream) break;
  } finally {
    stream.destroy();
  }
}

/** Open restores (other than `except`) onto any of `targets`, one line each naming the restore and the instances. */
export async function overlappingRestores(repo: Repository, targets: readonly Address[], except?: string): Promise<string[]> {
  const out: string[] = [];
  const mine = new Set(targets.map(describeTarget));
  for (const id of await openRestores(repo)) {
    if (id === except) continue;
    let record: RestoreRecord | undefined;
    try {
      record = await readDocument<RestoreRecord>(repo, recordKey(repo, id));
    } catch (err) {
      out.push(`restore ${id} is open and its record cannot be read (${errorMessage(err)}): its targets cannot be told apart from these`);
      continue;
    }
    if (!record) continue;
    const shared = record.targets.map(describeTarget).filter((a) => mine.has(a));
    if (shared.length > 0)
      out.push(
        `restore ${id} (started ${record.createdAt} on ${record.createdBy}) is still open onto ${shared.join(', ')}: ` +
          `let it finish, or resume it (spiderbackup restore --resume ${id})`,
      );
  }
  return out;
}
