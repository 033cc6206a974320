// Statements on the manifest-verdict table (ddl.ts createManifestTable): the runner's one write
// after a backup, and verify's read. The row is written on the instance it is for.
import { isNoSuchTable, type Queryable } from '../db/connect.js';
import { createManifestTable, MANIFEST_TABLE, SCHEMA } from './ddl.js';

const T = `${SCHEMA}.${MANIFEST_TABLE}`;

export interface ManifestVerdict {
  backupId: string;
  host: string;
  port: number;
  shardValue: number;
  role: string;
  tool: string;
  /** The backup's directory on the host that wrote it. */
  dir: string;
  bytes: number;
  manifestSha256: string;
  /** `ok` or `bad`. */
  verdict: string;
  verdictDetail: string;
  /** The manifest itself (JSON), so a host without the files still sees what was written. */
  manifest: string;
}

/** Creates the table when missing, then writes (or replaces) this instance's row. */
export async function publishVerdict(c: Queryable, v: ManifestVerdict): Promise<void> {
  await c.query(createManifestTable());
  await c.query(
    `INSERT INTO ${T} (BackupId, Host, Port, ShardValue, Role, Tool, Dir, Bytes, ManifestSha256, Verdict, VerdictDetail, Manifest, CheckedAt)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NOW())
     ON DUPLICATE KEY UPDATE ShardValue = VALUES(ShardValue), Role = VALUES(Role), Tool = VALUES(Tool), Dir = VALUES(Dir),
       Bytes = VALUES(Bytes), ManifestSha256 = VALUES(ManifestSha256), Verdict = VALUES(Verdict),
       VerdictDetail = VALUES(VerdictDetail), Manifest = VALUES(Manifest), CheckedAt = NOW()`,
    [
      v.backupId,
      v.host,
      v.port,
      v.shardValue,
      v.role.slice(0, 20),
      v.tool.slice(0, 32),
      v.dir.slice(0, 1024),
      v.bytes,
      v.manifestSha256,
      v.verdict,
      v.verdictDetail.slice(0, 1024),
      v.manifest,
    ],
  );
}

interface RawVerdict {
  BackupId: string;
  Host: string;
  Port: number;
  ShardValue: number;
  Role: string;
  Tool: string;
  Dir: string;
  Bytes: number | string;
  ManifestSha256: string;
  Verdict: string;
  VerdictDetail: string;
  Manifest: string;
}

/** The row written for (backupId, host, port); undefined when none (or no table yet). */
export async function readVerdict(c: Queryable, backupId: string, host: string, port: number): Promise<ManifestVerdict | undefined> {
  let rows: RawVerdict[];
  try {
    rows = (await c.query(
      `SELECT BackupId, Host, Port, ShardValue, Role, Tool, Dir, Bytes, ManifestSha256, Verdict, VerdictDetail, Manifest
       FROM ${T} WHERE BackupId = ? AND Host = ? AND Port = ?`,
      [backupId, host, port],
    )) as RawVerdict[];
  } catch (err) {
    if (isNoSuchTable(err)) return undefined;
    throw err;
  }
  const r = rows[0];
  if (!r) return undefined;
  return {
    backupId: r.BackupId,
    host: r.Host,
    port: Number(r.Port),
    shardValue: Number(r.ShardValue),
    role: r.Role,
    tool: r.Tool,
    dir: r.Dir,
    bytes: Number(r.Bytes),
    manifestSha256: r.ManifestSha256,
    verdict: r.Verdict,
    verdictDetail: r.VerdictDetail,
    manifest: r.Manifest,
  };
}
