// A little sample data for the sandbox: demo.orders, an InnoDB table on every shard master (its
// replica gets it by replication) and a Spider table on the spider node routing each row by
// id MOD <shards>, filled through the spider node as an application would.
import { spiderPartitions } from '../sql/ddl.js';
import type { Cluster } from './cluster.js';

const ROWS = 1000;
const COLUMNS = `id int NOT NULL, customer varchar(40) NOT NULL, amount decimal(10,2) NOT NULL,
  created_at datetime NOT NULL, PRIMARY KEY (id)`;

/** Creates and fills demo.orders; returns the number of rows written. */
export async function loadSampleData(c: Cluster): Promise<number> {
  await Promise.all(
    c.masters.map(async (m) => {
      await c.exec(m, 'CREATE DATABASE IF NOT EXISTS demo');
      await c.exec(m, `CREATE TABLE IF NOT EXISTS demo.orders (${COLUMNS}) ENGINE=InnoDB`);
    }),
  );
  // masters[i] is server SPT<i> (cluster.ts), which is where spiderPartitions puts partition i.
  const partitions = spiderPartitions({ column: 'id', shards: c.masters.length, database: 'demo', table: 'orders' });
  await c.exec(c.spider, 'CREATE DATABASE IF NOT EXISTS demo');
  await c.exec(c.spider, `CREATE TABLE IF NOT EXISTS demo.orders (${COLUMNS}) ENGINE=SPIDER ${partitions}`);
  const rows: unknown[][] = [];
  for (let id = 1; id <= ROWS; id++) {
    rows.push([id, `customer-${id % 37}`, ((id * 7919) % 100000) / 100, new Date(Date.UTC(2026, 0, 1) + id * 3_600_000)]);
  }
  await c.exec(c.spider, 'INSERT INTO demo.orders (id, customer, amount, created_at) VALUES ?', [rows]);
  await c.waitReplicated();
  return ROWS;
}
