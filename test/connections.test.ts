// Kept connections (src/db/connections.ts) against a real instance: one per endpoint and
// credentials (a changed password never gets the connection opened with the old one), a broken
// one replaced, and backoff after a failed connect. Connections are told apart by CONNECTION_ID().
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeptConnections } from '../src/db/connections.js';
import type { Connection, Endpoint } from '../src/db/connect.js';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type TestCluster } from './support/cluster.js';
import { freePort } from './support/daemon.js';

const USER = 'kept';
const id = async (c: Connection) => ((await c.query('SELECT CONNECTION_ID() AS id')) as { id: number }[])[0]?.id;

describe('kept connections', { timeout: 300_000 }, () => {
  let cluster: TestCluster;
  let inst: Instance;
  const ep = (password: string): Endpoint => ({ host: inst.host, port: inst.port, user: USER, password });

  before(async () => {
    cluster = await setUpCluster({ shards: 1, slaves: [], createTables: false });
    inst = cluster.masters[0] as Instance;
    await cluster.exec(inst, `CREATE USER '${USER}'@'%' IDENTIFIED BY 'first-pw'`);
  });

  after(() => cluster?.close());

  it('keeps one connection per endpoint, and a changed password gets a new one', async () => {
    const kept = new KeptConnections({ connect: { connectTimeoutMs: 10_000 } });
    try {
      const first = await kept.use(ep('first-pw'), id);
      assert.equal(await kept.use(ep('first-pw'), id), first, 'used again');
      assert.equal(await id(await kept.get(ep('first-pw'))), first, 'get() hands out the same one');
      assert.equal(kept.opened, 1);

      await cluster.exec(inst, `ALTER USER '${USER}'@'%' IDENTIFIED BY 'second-pw'`);
      const second = await kept.use(ep('second-pw'), id);
      assert.notEqual(second, first, 'the new password opened a connection of its own');
      assert.equal(kept.opened, 2);
      // The connection opened with the old password is only ever handed to the old password.
      assert.equal(await kept.use(ep('first-pw'), id), first);

      await kept.retain([ep('second-pw')]);
      assert.equal(await kept.use(ep('second-pw'), id), second, 'retained');
      // Closed by retain(): the old password now has to open a connection, which the server refuses.
      await assert.rejects(kept.use(ep('first-pw'), id), /Access denied/);
      assert.equal(kept.opened, 2);
    } finally {
      await kept.close();
    }
    await assert.rejects(kept.use(ep('second-pw'), id), /connection pool already closed/);
  });

  it('replaces a connection the server dropped, for use() and for get()', async () => {
    const kept = new KeptConnections({ connect: { connectTimeoutMs: 10_000 } });
    try {
      const first = await kept.use(ep('second-pw'), id, { retry: true });
      await cluster.exec(inst, `KILL CONNECTION ${first}`);
      // Broken while idle or found broken by the read itself: either way the read is done on a new one.
      const second = await kept.use(ep('second-pw'), id, { retry: true });
      assert.notEqual(second, first);

      const conn = await kept.get(ep('second-pw'));
      await cluster.exec(inst, `KILL CONNECTION ${second}`);
      await assert.rejects(conn.query('SELECT 1'));
      assert.equal(conn.broken, true, 'a dropped connection is broken');
      kept.failed(ep('second-pw'));
      const third = await kept.get(ep('second-pw'));
      assert.notEqual(third, conn);
      assert.notEqual(await id(third), second);
    } finally {
      await kept.close();
    }
  });

  it('after a failed connect, backs off when asked to: the last error at once, no new attempt', async () => {
    let now = 1_000_000;
    const kept = new KeptConnections({
      connect: { connectTimeoutMs: 10_000 },
      reconnect: { firstMs: 1000, capMs: 60_000 },
      now: () => now,
    });
    const closed: Endpoint = { host: '127.0.0.1', port: await freePort(), user: USER, password: 'x' };
    try {
      await assert.rejects(kept.get(closed), (err: Error) => !/next connection attempt/.test(err.message));
      await assert.rejects(kept.get(closed), /\(next connection attempt in 1 s\)$/);
      now += 1000;
      await assert.rejects(kept.get(closed), (err: Error) => !/next connection attempt/.test(err.message));
      await assert.rejects(kept.get(closed), /\(next connection attempt in 2 s\)$/);
      assert.equal(kept.opened, 0);
    } finally {
      await kept.close();
    }
  });
});
