// Self-test of the integration harness: a real MariaDB topology (2 masters, a replica of master0,
// a Spider node, and the tdbctl stand-in in front of its backing database), the same with an
// address per instance, and the port plan (SPIDERBACKUP_TEST_PORTS).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ini from 'ini';
import mysql from 'mysql2/promise';
import { ADMIN_PASSWORD, ADMIN_USER, HOST, startCluster, TDBCTL_PORT_OFFSET, type Instance } from '../src/sandbox/cluster.js';
import { portPlan, PORTS_ENV, type PortRange } from '../src/sandbox/ports.js';
import { setUpCluster, type TestCluster } from './support/cluster.js';
import { insertTasks } from './support/tasks.js';

const TABLE = 'infodba_schema.global_backup';

describe('integration harness', { timeout: 300_000 }, () => {
  let cluster: TestCluster;
  let startMs = 0;

  before(async () => {
    const t0 = performance.now();
    cluster = await setUpCluster({ tdbctl: true });
    startMs = performance.now() - t0;
  });

  after(async (t) => {
    if (!cluster) return;
    const pids = mariadbdPids(cluster.dir);
    const t0 = performance.now();
    await cluster.close();
    const msg = `close() took ${Math.round(performance.now() - t0)} ms`;
    if ('diagnostic' in t) t.diagnostic(msg);
    else console.log(msg);
    assert.equal(existsSync(cluster.dir), false, 'temp dir removed');
    for (const pid of pids) assert.equal(isAlive(pid), false, `mariadbd ${pid} still running`);
  });

  it('starts the topology with the expected ports and servers', async (t) => {
    t.diagnostic(`startCluster({ tdbctl: true }) took ${Math.round(startMs)} ms`);
    const { masters, slaves, spider, tdbctlNode, tdbctl } = cluster;
    assert.equal(masters.length, 2);
    assert.deepEqual(
      slaves.map((s) => s.shardValue),
      [0],
    );
    const { data, spider: spiderPorts, range } = cluster.ports;
    for (const i of [...masters, ...slaves]) assert.ok(inRanges(i.port, data), `${i.name} port ${i.port}`);
    assert.ok(inRanges(spider.port, [spiderPorts]), `spider port ${spider.port}`);
    assert.ok(inRanges(spider.port + TDBCTL_PORT_OFFSET, [range]), 'the tdbctl companion is inside the range');
    for (const i of cluster.all()) assert.equal(i.host, HOST, `${i.name} host`);
    assert.equal(tdbctlNode?.port, spider.port + TDBCTL_PORT_OFFSET);
    assert.equal(tdbctl?.port, tdbctlNode?.port);
    assert.equal(cluster.all().length, 5);

    const servers = await cluster.query<{ Server_name: string; Port: number; Wrapper: string }>(
      spider,
      'SELECT Server_name, Port, Wrapper FROM mysql.servers ORDER BY Server_name',
    );
    assert.deepEqual(servers, [
      { Server_name: 'SPIDER0', Port: spider.port, Wrapper: 'SPIDER' },
      { Server_name: 'SPT0', Port: masters[0]!.port, Wrapper: 'mysql' },
      { Server_name: 'SPT1', Port: masters[1]!.port, Wrapper: 'mysql' },
      { Server_name: 'SPT_SLAVE0', Port: slaves[0]!.port, Wrapper: 'mysql_slave' },
    ]);
  });

  it('routes a Spider-table row to the master of its shard', async () => {
    await insertTasks(
      cluster,
      cluster.masters.map((m) => ({ backupId: 'route', for: m })),
    );
    for (const shard of [0, 1]) {
      const rows = await cluster.query(cluster.masters[shard]!, `SELECT ShardValue FROM ${TABLE} WHERE BackupId = 'route'`);
      assert.deepEqual(rows, [{ ShardValue: shard }], `rows on masters[${shard}]`);
    }
    const viaSpider = await cluster.query(cluster.spider, `SELECT ShardValue FROM ${TABLE} WHERE BackupId = 'route' ORDER BY ShardValue`);
    assert.deepEqual(viaSpider, [{ ShardValue: 0 }, { ShardValue: 1 }]);
  });

  it('replicates masters[0] to its replica', async () => {
    await cluster.waitReplicated();
    const [slave] = cluster.slaves;
    assert.equal(cluster.masterOf(slave!), cluster.masters[0]);
    const rows = await cluster.query(slave!, `SELECT ShardValue FROM ${TABLE} WHERE BackupId = 'route'`);
    assert.deepEqual(rows, [{ ShardValue: 0 }]);
  });

  it('gives ADMIN_USER access to the replica over TCP through replication alone', async () => {
    const slave = cluster.slaves[0]!;
    const conn = await mysql.createConnection({ host: HOST, port: slave.port, user: ADMIN_USER, password: ADMIN_PASSWORD });
    try {
      const [rows] = await conn.query('SELECT CURRENT_USER() AS u');
      assert.deepEqual(rows, [{ u: `${ADMIN_USER}@%` }]);
    } finally {
      await conn.end();
    }
  });

  describe('tdbctl stand-in', () => {
    const connect = (password = ADMIN_PASSWORD, user = ADMIN_USER) =>
      mysql.createConnection({ host: HOST, port: cluster.tdbctl!.port, user, password });

    it('answers tdbctl get primary from its settings', async () => {
      const conn = await connect();
      try {
        const [rows] = await conn.query('tdbctl get primary');
        assert.deepEqual(rows, [{ SERVER_NAME: 'TDBCTL0', HOST, PORT: cluster.tdbctl!.port, IS_THIS_SERVER: 1 }]);
        cluster.tdbctl!.setPrimary(false);
        const [again] = await conn.query('TDBCTL GET PRIMARY ;  ');
        assert.equal((again as Array<{ IS_THIS_SERVER: number }>)[0]?.IS_THIS_SERVER, 0);
        const [notPrimary] = await conn.query('tdbctl get primary');
        assert.deepEqual(notPrimary, [{ SERVER_NAME: 'TDBCTL0', HOST, PORT: cluster.tdbctl!.port, IS_THIS_SERVER: 0 }]);
      } finally {
        cluster.tdbctl!.setPrimary(true);
        await conn.end();
      }
    });

    it('proxies mysql.servers through text queries', async () => {
      const conn = await connect();
      try {
        const sql = 'SELECT Server_name, Host, Port, Username, Password, Wrapper FROM mysql.servers WHERE Wrapper = ? ORDER BY Server_name';
        const [literal] = await conn.query(sql.replace('?', "'mysql'"));
        const expected = cluster.masters.map((m) => ({
          Server_name: `SPT${m.shardValue}`,
          Host: HOST,
          Port: m.port,
          Username: ADMIN_USER,
          Password: ADMIN_PASSWORD,
          Wrapper: 'mysql',
        }));
        assert.deepEqual(literal, expected);
        const [queried] = await conn.query(sql, ['mysql']);
        assert.deepEqual(queried, expected);
        const [all] = await conn.query('SELECT Server_name, Wrapper, Port FROM mysql.servers ORDER BY Server_name');
        assert.deepEqual(
          (all as Array<{ Server_name: string }>).map((r) => r.Server_name),
          ['SPIDER0', 'SPT0', 'SPT1', 'SPT_SLAVE0', 'TDBCTL0'],
        );
        await conn.query('SET NAMES utf8mb4');
        assert.deepEqual((await conn.query('SELECT 1 AS one'))[0], [{ one: 1 }]);
      } finally {
        await conn.end();
      }
    });

    it('relays typed values, OK packets and errors', async () => {
      const conn = await connect();
      try {
        const [typed] = await conn.query(
          "SELECT ? AS n, ? AS s, ? AS z, CAST(-5 AS SIGNED) AS i, 2.5e0 AS d, 12.34 AS dec1, TIMESTAMP'2024-02-03 04:05:06' AS ts, " +
            "DATE'2024-02-03' AS dt, TIME'-01:02:03' AS tm",
          [42, 'x', null],
        );
        const row = (typed as Array<Record<string, unknown>>)[0]!;
        assert.equal(Number(row.n), 42);
        assert.equal(row.s, 'x');
        assert.equal(row.z, null);
        assert.equal(row.i, -5);
        assert.equal(row.d, 2.5);
        assert.equal(row.dec1, '12.34');
        assert.equal((row.ts as Date).getTime(), new Date(2024, 1, 3, 4, 5, 6).getTime());
        assert.equal((row.dt as Date).getTime(), new Date(2024, 1, 3).getTime());
        assert.equal(row.tm, '-01:02:03');

        await conn.query('CREATE DATABASE IF NOT EXISTS scratch');
        await conn.query('CREATE TEMPORARY TABLE scratch.t (a int)');
        const [inserted] = await conn.query(`INSERT INTO scratch.t VALUES (?), (?), (?)`, [1, 2, 3]);
        assert.equal((inserted as mysql.ResultSetHeader).affectedRows, 3);
        const [updated] = await conn.query(`UPDATE scratch.t SET a = a + 10 WHERE a > 1`);
        assert.equal((updated as mysql.ResultSetHeader).affectedRows, 2);

        await assert.rejects(conn.query('SELECT * FROM no_such_db.t'), { errno: 1146 });
        await assert.rejects(conn.query('SELEKT ?', [1]), { errno: 1064 });
        assert.deepEqual((await conn.query('SELECT 2 AS two'))[0], [{ two: 2 }], 'connection usable after errors');
      } finally {
        await conn.end();
      }
    });

    it('works with a connection pool', async () => {
      const pool = mysql.createPool({
        host: HOST,
        port: cluster.tdbctl!.port,
        user: ADMIN_USER,
        password: ADMIN_PASSWORD,
        connectionLimit: 3,
      });
      try {
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            i % 2 ? pool.query('SELECT Server_name FROM mysql.servers WHERE Wrapper = ?', ['TDBCTL']) : pool.query('tdbctl get primary'),
          ),
        );
        for (const [i, [rows]] of results.entries()) {
          const expected =
            i % 2 ? [{ Server_name: 'TDBCTL0' }] : [{ SERVER_NAME: 'TDBCTL0', HOST, PORT: cluster.tdbctl!.port, IS_THIS_SERVER: 1 }];
          assert.deepEqual(rows, expected);
        }
      } finally {
        await pool.end();
      }
    });

    it('refuses prepared statements (tdbctl is sent text queries only) and stays usable', async () => {
      const conn = await connect();
      try {
        await assert.rejects(conn.execute('tdbctl get primary'), { errno: 1047, message: /only text queries/ });
        await assert.rejects(conn.execute('SELECT ? AS one', [1]), { errno: 1047 });
        assert.deepEqual((await conn.query('SELECT 1 AS one'))[0], [{ one: 1 }]);
      } finally {
        await conn.end();
      }
    });

    it('rejects other users and wrong passwords', async () => {
      await assert.rejects(connect('wrong'), { errno: 1045 });
      await assert.rejects(connect(ADMIN_PASSWORD, 'root'), { errno: 1045 });
    });

    it('can be stopped and started to simulate an outage', async () => {
      const idle = await connect();
      await cluster.tdbctl!.stop();
      await assert.rejects(connect(), { code: 'ECONNREFUSED' });
      await assert.rejects(idle.query('SELECT 1'));
      idle.destroy();
      await cluster.tdbctl!.start();
      const conn = await connect();
      try {
        assert.deepEqual((await conn.query('SELECT 1 AS one'))[0], [{ one: 1 }]);
      } finally {
        await conn.end();
      }
    });
  });

  it('stops and starts a master; its replica resumes', async () => {
    const [m0] = cluster.masters;
    await cluster.stop(m0!);
    await assert.rejects(cluster.query(m0!, 'SELECT 1'));
    await assert.rejects(cluster.waitReplicated(), /master0 is stopped/);
    await cluster.start(m0!);
    await insertTasks(cluster, [{ backupId: 'after-restart', for: m0! }], { on: m0! });
    await cluster.waitReplicated();
    const rows = await cluster.query(cluster.slaves[0]!, `SELECT BackupId FROM ${TABLE} WHERE BackupId = 'after-restart'`);
    assert.deepEqual(rows, [{ BackupId: 'after-restart' }]);
  });

  it('stops and starts a replica; it catches up', async () => {
    const [m0] = cluster.masters;
    const [s0] = cluster.slaves;
    await cluster.stop(s0!);
    await cluster.exec(m0!, `UPDATE ${TABLE} SET BackupStatus = 'while-replica-down' WHERE BackupId = 'after-restart'`);
    await cluster.start(s0!);
    await cluster.waitReplicated();
    const rows = await cluster.query(s0!, `SELECT BackupStatus FROM ${TABLE} WHERE BackupId = 'after-restart'`);
    assert.deepEqual(rows, [{ BackupStatus: 'while-replica-down' }]);
  });

  it('writes an instance ini in the old tool format', () => {
    const dir = join(cluster.dir, 'ini');
    const spiderIni = ini.parse(readFileSync(cluster.writeInstanceIni(dir, cluster.spider), 'utf8'));
    assert.equal(spiderIni.Public.MysqlRole, 'spider_master');
    assert.equal(spiderIni.Public.MysqlPort, String(cluster.spider.port));
    assert.equal(spiderIni.Public.MysqlPasswd, ADMIN_PASSWORD);
    assert.ok(spiderIni.LogicalBackup, 'foreign section kept');
    const path = cluster.writeInstanceIni(dir, cluster.slaves[0]!, { BackupType: 'physical', 'LogicalBackup.Threads': '8' });
    assert.equal(path, join(dir, `dbbackup.${cluster.slaves[0]!.port}.ini`));
    const slaveIni = ini.parse(readFileSync(path, 'utf8'));
    assert.equal(slaveIni.Public.MysqlRole, 'slave');
    assert.equal(slaveIni.Public.BackupType, 'physical');
    assert.equal(slaveIni.LogicalBackup.Threads, '8');
  });
});

describe('integration harness: an address per instance (hosts: distinct)', { timeout: 300_000 }, () => {
  let cluster: TestCluster;
  let m0: Instance;
  let s0: Instance;

  before(async () => {
    cluster = await setUpCluster({ shards: 2, slaves: [0], tdbctl: true, hosts: 'distinct' });
    [m0, s0] = [cluster.masters[0]!, cluster.slaves[0]!];
  });

  after(() => cluster?.close());

  const connectTo = (host: string, port: number) => mysql.createConnection({ host, port, user: ADMIN_USER, password: ADMIN_PASSWORD });

  it('puts masters, replica and spider on 127.0.0.2, .3 …, the tdbctl node beside its spider node', async () => {
    const { masters, slaves, spider, tdbctlNode, tdbctl } = cluster;
    assert.deepEqual(
      [...masters, ...slaves, spider].map((i) => i.host),
      ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'],
    );
    assert.equal(tdbctlNode?.host, spider.host);
    assert.equal(tdbctl?.host, spider.host);
    const servers = await cluster.query(spider, 'SELECT Server_name, Host, Port FROM mysql.servers ORDER BY Server_name');
    assert.deepEqual(servers, [
      { Server_name: 'SPIDER0', Host: spider.host, Port: spider.port },
      { Server_name: 'SPT0', Host: m0.host, Port: m0.port },
      { Server_name: 'SPT1', Host: masters[1]!.host, Port: masters[1]!.port },
      { Server_name: 'SPT_SLAVE0', Host: s0.host, Port: s0.port },
    ]);
    const [source] = await cluster.query<{ Master_Host: string; Master_Port: number }>(s0, 'SHOW SLAVE STATUS');
    assert.deepEqual([source?.Master_Host, source?.Master_Port], [m0.host, m0.port]);
    const file = cluster.writeInstanceIni(join(cluster.dir, 'ini'), m0);
    assert.equal(ini.parse(readFileSync(file, 'utf8')).Public.MysqlHost, '127.0.0.2');
  });

  it('binds each server to its own address only', async () => {
    for (const inst of [m0, s0, cluster.spider]) {
      const conn = await connectTo(inst.host, inst.port);
      try {
        const [rows] = await conn.query('SELECT @@bind_address AS a, @@port AS p');
        assert.deepEqual(rows, [{ a: inst.host, p: inst.port }]);
      } finally {
        await conn.end();
      }
      await assert.rejects(connectTo(HOST, inst.port), { code: 'ECONNREFUSED' }, `${inst.name} not on ${HOST}`);
    }
    const ctl = await connectTo(cluster.spider.host, cluster.tdbctl!.port);
    try {
      const [rows] = await ctl.query('tdbctl get primary');
      assert.deepEqual(rows, [{ SERVER_NAME: 'TDBCTL0', HOST: cluster.spider.host, PORT: cluster.tdbctl!.port, IS_THIS_SERVER: 1 }]);
    } finally {
      await ctl.end();
    }
  });

  it('refuses an address that is not IPv4 or not on this machine, before starting anything', async () => {
    await assert.rejects(startCluster({ hosts: () => 'localhost' }), /hosts: master0: "localhost" is not an IPv4 address/);
    if (readFileSync('/proc/sys/net/ipv4/ip_nonlocal_bind', 'utf8').trim() === '0') {
      await assert.rejects(startCluster({ hosts: () => '192.0.2.1' }), /cannot listen on 192\.0\.2\.1: not an address of this machine/);
    }
  });

  it('routes a row written through Spider to the master at 127.0.0.2, and it replicates to its replica', async () => {
    await insertTasks(
      cluster,
      cluster.masters.map((m) => ({ backupId: 'distinct', for: m })),
    );
    const sql = `SELECT ShardValue, Host FROM ${TABLE} WHERE BackupId = 'distinct'`;
    const onMaster = await connectTo('127.0.0.2', m0.port);
    try {
      assert.deepEqual((await onMaster.query(sql))[0], [{ ShardValue: 0, Host: '127.0.0.2' }]);
    } finally {
      await onMaster.end();
    }
    assert.deepEqual(await cluster.query(cluster.masters[1]!, sql), [{ ShardValue: 1, Host: '127.0.0.3' }]);
    await cluster.waitReplicated();
    const onReplica = await connectTo(s0.host, s0.port);
    try {
      assert.deepEqual((await onReplica.query(sql))[0], [{ ShardValue: 0, Host: '127.0.0.2' }]);
    } finally {
      await onReplica.end();
    }
  });
});

describe('port plan (SPIDERBACKUP_TEST_PORTS)', () => {
  const plan = (v: string | undefined) => portPlan(v, TDBCTL_PORT_OFFSET);

  it('defaults to data 20000-24999, spider 25000-25899 (tdbctl 26000-26899)', () => {
    const expected = { range: { min: 20000, max: 26899 }, data: [{ min: 20000, max: 24999 }], spider: { min: 25000, max: 25899 } };
    assert.deepEqual(plan(undefined), expected);
    assert.deepEqual(plan(''), expected);
    assert.deepEqual(plan('20000-26899'), expected);
  });

  it('splits another range the same way, the tdbctl companions inside it, no data port in 25000-25999', () => {
    assert.deepEqual(plan('10000-16899'), {
      range: { min: 10000, max: 16899 },
      data: [{ min: 10000, max: 14999 }],
      spider: { min: 15000, max: 15899 },
    });
    assert.deepEqual(plan(' 24000 - 30899 '), {
      range: { min: 24000, max: 30899 },
      data: [
        { min: 24000, max: 24999 },
        { min: 26000, max: 28999 },
      ],
      spider: { min: 29000, max: 29899 },
    });
    for (const v of ['10000-11026', '30000-32767', '40000-65535', '1024-2100']) {
      const p = plan(v);
      assert.ok(p.spider.max + TDBCTL_PORT_OFFSET <= p.range.max, `${v}: companions inside`);
      assert.ok(p.spider.max - p.spider.min + 1 >= 4, `${v}: spider ports`);
      const dataPorts = p.data.reduce((n, r) => n + r.max - r.min + 1, 0);
      assert.ok(dataPorts >= 20, `${v}: data ports`);
      for (const r of p.data)
        assert.ok(r.max < p.spider.min && r.min >= p.range.min && (r.max < 25000 || r.min > 25999), `${v}: data ${r.min}-${r.max}`);
    }
  });

  it('refuses a bad value with a message naming the variable', async () => {
    for (const [v, why] of [
      ['20000', /not a port range/],
      ['20000-', /not a port range/],
      ['a-b', /not a port range/],
      ['20000:26899', /not a port range/],
      ['26899-20000', /min must be below max/],
      ['80-5000', /within 1024-65535/],
      ['60000-70000', /within 1024-65535/],
      ['30000-30999', /too small/],
      ['25000-27100', /too small/],
    ] as const) {
      assert.throws(
        () => plan(v),
        (err: Error) => err instanceof RangeError && err.message.includes(`${PORTS_ENV}="${v}"`) && why.test(err.message),
        v,
      );
    }
    const saved = process.env[PORTS_ENV];
    process.env[PORTS_ENV] = '30000-30100';
    try {
      await assert.rejects(startCluster(), new RegExp(`${PORTS_ENV}="30000-30100": too small`));
    } finally {
      if (saved === undefined) delete process.env[PORTS_ENV];
      else process.env[PORTS_ENV] = saved;
    }
  });
});

function inRanges(port: number, ranges: PortRange[]): boolean {
  return ranges.some((r) => port >= r.min && port <= r.max);
}

function mariadbdPids(dir: string): number[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'harness.pid')))
    .map((d) => Number(readFileSync(join(dir, d.name, 'harness.pid'), 'utf8')));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
