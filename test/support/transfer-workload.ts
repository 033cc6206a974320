// A cross-shard bank for restore-point tests, benchmarks and demos: accounts spread over the shards
// (account id mod shards), clients moving money between two shards through every Spider node, and
// a checker that rolls restored copies of the shards forward to a restore point with the shards'
// own binlogs (mariadb-binlog) and sums the balances. The sum never changes, so at a consistent
// point the restored shards must hold exactly the seeded total and no half-finished transfer.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { replayBinlog } from '../../src/restore/binlog-replay.js';
import { ADMIN_PASSWORD, ADMIN_USER, type Cluster, type Instance } from '../../src/sandbox/cluster.js';
import { installDatadir, MariadbServer } from '../../src/restore/mariadbd.js';
import { pickPort, portPlan, PORTS_ENV } from '../../src/sandbox/ports.js';

export const BANK = { accounts: 400, balance: 10_000 } as const;
const DB = 'bank';

export function bankTotal(accounts = BANK.accounts, balance = BANK.balance): number {
  return accounts * balance;
}

/** Creates bank.acct on every shard master and a Spider table over them on every Spider node, then seeds it. */
export async function setupBank(cluster: Cluster, accounts = BANK.accounts, balance = BANK.balance): Promise<void> {
  const n = cluster.masters.length;
  const columns = '(id INT NOT NULL PRIMARY KEY, balance BIGINT NOT NULL) DEFAULT CHARSET=utf8mb4';
  await Promise.all(
    cluster.masters.map(async (m) => {
      await cluster.exec(m, `CREATE DATABASE IF NOT EXISTS ${DB}`);
      await cluster.exec(m, `CREATE TABLE IF NOT EXISTS ${DB}.acct ${columns} ENGINE=InnoDB`);
    }),
  );
  const parts = cluster.masters.map(
    (_, i) => `PARTITION p${i} VALUES IN (${i}) COMMENT = 'database "${DB}", table "acct", server "SPT${i}"'`,
  );
  for (const s of cluster.spiders) {
    await cluster.exec(s, `CREATE DATABASE IF NOT EXISTS ${DB}`);
    await cluster.exec(
      s,
      `CREATE TABLE IF NOT EXISTS ${DB}.acct ${columns} ENGINE=SPIDER PARTITION BY LIST (id MOD ${n}) (${parts.join(', ')})`,
    );
  }
  const rows: number[][] = [];
  for (let id = 0; id < accounts; id++) rows.push([id, balance]);
  await cluster.exec(cluster.spider, `INSERT INTO ${DB}.acct (id, balance) VALUES ?`, [rows]);
}

export interface TransferStats {
  committed: number;
  failed: number;
  errors: Map<string, number>;
}

export interface Transfers {
  /** Transfers committed so far. */
  committed(): number;
  /** Stops the clients after their current transfer and closes their connections. */
  stop(): Promise<TransferStats>;
}

/**
 * `clients` connections spread over the Spider nodes (client k uses spiders[k mod n]), each moving
 * a random amount between a random account of one shard and one of another, as fast as it can.
 * Rows are always locked in ascending id order: the shards cannot see a deadlock across two of
 * them, which would stall both transfers for innodb_lock_wait_timeout.
 */
export async function startTransfers(cluster: Cluster, clients = 8, accounts = BANK.accounts): Promise<Transfers> {
  const shards = cluster.masters.length;
  if (shards < 2) throw new RangeError('transfers need at least two shards');
  const conns = await Promise.all(
    Array.from({ length: clients }, (_, k) => {
      const s = cluster.spiders[k % cluster.spiders.length] as Instance;
      return mysql.createConnection({ host: s.host, port: s.port, user: ADMIN_USER, password: ADMIN_PASSWORD });
    }),
  );
  const stats: TransferStats = { committed: 0, failed: 0, errors: new Map() };
  let stopping = false;
  const pick = () => Math.floor(Math.random() * accounts);
  const loops = conns.map(async (c) => {
    while (!stopping) {
      let a = pick();
      let b = pick();
      if (a % shards === b % shards) b = (b + 1) % accounts; // another shard: ids are spread by id mod shards
      const amount = 1 + Math.floor(Math.random() * 100);
      const [lo, hi, delta] = a < b ? [a, b, amount] : [b, a, -amount];
      a = lo;
      b = hi;
      try {
        await c.query('BEGIN');
        await c.query(`UPDATE ${DB}.acct SET balance = balance - ? WHERE id = ?`, [delta, a]);
        await c.query(`UPDATE ${DB}.acct SET balance = balance + ? WHERE id = ?`, [delta, b]);
        await c.query('COMMIT');
        stats.committed++;
      } catch (err) {
        stats.failed++;
        const key = String((err as { errno?: number }).errno ?? (err as Error).message);
        stats.errors.set(key, (stats.errors.get(key) ?? 0) + 1);
        await c.query('ROLLBACK').catch(() => {});
      }
    }
  });
  return {
    committed: () => stats.committed,
    async stop() {
      stopping = true;
      await Promise.all(loops);
      await Promise.all(conns.map((c) => c.end().catch(() => c.destroy())));
      return stats;
    },
  };
}

/** Each shard's binlog position, read one after another without blocking anything (the control). */
export async function unblockedPositions(cluster: Cluster, gapMs = 0): Promise<string[]> {
  const out: string[] = [];
  for (const m of cluster.masters) {
    const [row] = await cluster.query<{ g: string }>(m, 'SELECT @@GLOBAL.gtid_binlog_pos AS g');
    out.push(row?.g ?? '');
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
  }
  return out;
}

export interface PointCheck {
  /** Sum of the committed balances over the restored shards. */
  sum: number;
  /** XA transactions left prepared on the restored shards at the point. */
  preparedXa: number;
  consistent: boolean;
}

/**
 * Restored copies of the shards (one scratch mariadbd each), loaded from a base copy taken with
 * mariadb-dump while no transfer ran, then rolled forward point after point. Positions given to
 * check() must not go backwards (each replay continues from the previous one).
 */
export class BankChecker {
  private readonly scratch: MariadbServer[] = [];
  private readonly at: string[] = [];
  private readonly total: number;
  /** Each shard's GTID position when the base copy was taken (where a replay starts). */
  readonly base: string[] = [];

  private constructor(
    private readonly cluster: Cluster,
    total: number,
  ) {
    this.total = total;
  }

  /** Takes the base copy now: call it after setupBank and before any transfer. */
  static async create(cluster: Cluster, total = bankTotal()): Promise<BankChecker> {
    const checker = new BankChecker(cluster, total);
    try {
      await checker.init();
    } catch (err) {
      await checker.close();
      throw err;
    }
    return checker;
  }

  private async init(): Promise<void> {
    const ports = portPlan(process.env[PORTS_ENV], 1000);
    const taken = new Set(this.cluster.all().map((i) => i.port));
    const template = join(this.cluster.dir, 'replay-template', 'data');
    await installDatadir(template, join(this.cluster.dir, 'replay-template', 'tmp'));
    // Checkers side by side each have their own copies.
    const root = mkdtempSync(join(this.cluster.dir, 'restored-'));
    for (const [i, m] of this.cluster.masters.entries()) {
      const dir = join(root, `shard${i}`);
      const server = new MariadbServer({ dir, port: await pickPort(ports.data, taken, { avoid: [1000] }), serverId: 901 + i });
      this.scratch.push(server);
      const { cp } = await import('node:fs/promises');
      await cp(template, server.datadir, { recursive: true });
      await server.start();
      const [pos] = await this.cluster.query<{ g: string }>(m, 'SELECT @@GLOBAL.gtid_binlog_pos AS g');
      this.at.push(pos?.g ?? '');
      this.base.push(pos?.g ?? '');
      const dump = await run('mariadb-dump', [
        '--no-defaults',
        `--socket=${m.socket}`,
        '--user=root',
        '--single-transaction',
        '--databases',
        DB,
      ]);
      await run('mariadb', ['--no-defaults', `--socket=${server.socket}`, '--user=root'], dump);
    }
  }

  /** Rolls every restored shard forward to `positions` (one GTID position per shard) and sums. */
  async check(positions: readonly string[]): Promise<PointCheck> {
    const per = await Promise.all(
      this.cluster.masters.map(async (m, i) => {
        const server = this.scratch[i] as MariadbServer;
        const stop = positions[i] as string;
        if (stop !== this.at[i]) {
          await replayBinlog({
            files: await binlogFiles(this.cluster, m),
            startGtid: this.at[i],
            stopGtid: stop,
            target: { socket: server.socket },
          });
          this.at[i] = stop;
        }
        const conn = await mysql.createConnection({ socketPath: server.socket, user: 'root' });
        try {
          const [[sum]] = (await conn.query(`SELECT COALESCE(SUM(balance), 0) AS s FROM ${DB}.acct`)) as unknown as [
            { s: string | number }[],
          ];
          const [xa] = (await conn.query('XA RECOVER')) as unknown as [unknown[]];
          return { sum: Number(sum?.s ?? 0), xa: xa.length };
        } finally {
          await conn.end();
        }
      }),
    );
    const sum = per.reduce((n, p) => n + p.sum, 0);
    const preparedXa = per.reduce((n, p) => n + p.xa, 0);
    return { sum, preparedXa, consistent: sum === this.total && preparedXa === 0 };
  }

  async close(): Promise<void> {
    await Promise.all(this.scratch.map((s) => s.dispose()));
  }
}

async function binlogFiles(cluster: Cluster, m: Instance): Promise<string[]> {
  const rows = await cluster.query<{ Log_name: string }>(m, 'SHOW BINARY LOGS');
  return rows.map((r) => join(m.datadir, r.Log_name));
}

function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${err.slice(-2000)}`))));
    // A client that exits early closes its stdin: its exit code and stderr say why, not an EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}
