// A replay never outlives its target: the restore worker's replay (issue 20) must end when the
// server it writes into dies under it, or when the worker is told to stop — with the XA carry's
// filter between the tools, whose paused output once kept mariadb-binlog's 'close' from coming.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import mysql from 'mysql2/promise';
import { installDatadir, MariadbServer } from '../src/restore/mariadbd.js';
import { replayBinlog, ReplayError } from '../src/restore/binlog-replay.js';

let dir: string;
let binlog: string;
const servers: MariadbServer[] = [];

async function server(name: string, serverId: number): Promise<MariadbServer> {
  const s = new MariadbServer({ dir: join(dir, name), port: 0, serverId, extraArgs: ['--skip-networking', '--skip-grant-tables'] });
  servers.push(s);
  await installDatadir(s.datadir, join(dir, name, 'tmp'));
  await s.start();
  return s;
}

/** A session on `s` holding the global read lock: the replay's first write waits behind it. */
async function blocked(s: MariadbServer): Promise<mysql.Connection> {
  const c = await mysql.createConnection({ socketPath: s.socket, user: 'root' });
  await c.query('FLUSH TABLES WITH READ LOCK');
  return c;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sb-replay-stops-'));
  // Some MB of binlog: more than the pipes between the tools hold.
  const source = await server('source', 1);
  const c = await mysql.createConnection({ socketPath: source.socket, user: 'root' });
  await c.query('CREATE DATABASE d');
  await c.query('CREATE TABLE d.t (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(2000)) ENGINE=InnoDB');
  for (let i = 0; i < 40; i++) await c.query('INSERT INTO d.t (v) SELECT REPEAT(?, 1000) FROM d.seq_1_to_100', [String(i % 10)]);
  await c.query('FLUSH BINARY LOGS');
  await c.end();
  binlog = join(source.datadir, 'mysql-bin.000001');
});

after(async () => {
  await Promise.all(servers.map((s) => s.dispose().catch(() => undefined)));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The whole source binlog replayed into `target` with the XA carry on (its output paused when a lock blocks the client). */
const replayInto = (target: { socket: string }, signal?: AbortSignal) =>
  replayBinlog({
    files: [binlog],
    startGtid: '',
    stopGtid: '0-1-999999',
    carryPreparedXa: true,
    target: { socket: target.socket },
    signal,
  });

describe('a replay never outlives its target', { timeout: 180_000 }, () => {
  test(
    'its server killed mid-replay (XA carry on): the replay fails naming the client, it does not hang',
    { timeout: 60_000 },
    async () => {
      const target = await server('target1', 2);
      const lock = await blocked(target);
      try {
        const replay = replayInto(target);
        await new Promise((r) => setTimeout(r, 1500));
        target.kill();
        await assert.rejects(replay, (e) => e instanceof ReplayError && /mariadb exited/.test(e.message));
      } finally {
        await lock.end().catch(() => undefined);
      }
    },
  );

  test('told to stop (the worker aborts): both tools go and the replay says it was stopped', { timeout: 60_000 }, async () => {
    const target = await server('target2', 3);
    const lock = await blocked(target);
    const abort = new AbortController();
    try {
      const replay = replayInto(target, abort.signal);
      await new Promise((r) => setTimeout(r, 1500));
      abort.abort();
      await assert.rejects(replay, (e) => e instanceof ReplayError && /stopped/.test(e.message));
      const [rows] = await lock.query('SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', ['d']);
      assert.equal((rows as { n: number }[])[0]?.n, 0, 'nothing was applied behind the lock');
    } finally {
      await lock.end().catch(() => undefined);
    }
  });
});
