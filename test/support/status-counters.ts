// What a client costs an instance, read from the server's own counters: `Questions` (statements
// sent by clients) and `Connections` (connection attempts). Read as root over the instance's unix
// socket on one connection kept open, so that reading costs no connection at all and the same few
// statements every time (what one read costs is measured by calibrate() and subtracted).
import mysql from 'mysql2/promise';
import type { Instance } from '../../src/sandbox/cluster.js';

export interface Counters {
  questions: number;
  connections: number;
}

export class StatusCounters {
  private constructor(
    readonly instance: Instance,
    private readonly conn: mysql.Connection,
  ) {}

  static async open(instance: Instance): Promise<StatusCounters> {
    const conn = await mysql.createConnection({ socketPath: instance.socket, user: 'root' });
    return new StatusCounters(instance, conn);
  }

  async read(): Promise<Counters> {
    const [rows] = await this.conn.query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Connections')");
    const v = new Map((rows as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name.toLowerCase(), Number(r.Value)]));
    return { questions: v.get('questions') ?? NaN, connections: v.get('connections') ?? NaN };
  }

  async close(): Promise<void> {
    await this.conn.end().catch(() => this.conn.destroy());
  }
}

export const delta = (a: Counters, b: Counters): Counters => ({
  questions: b.questions - a.questions,
  connections: b.connections - a.connections,
});

/** Counters of several instances, read together. */
export class CounterSet {
  private constructor(readonly readers: StatusCounters[]) {}

  static async open(instances: Instance[]): Promise<CounterSet> {
    return new CounterSet(await Promise.all(instances.map((i) => StatusCounters.open(i))));
  }

  read(): Promise<Counters[]> {
    return Promise.all(this.readers.map((r) => r.read()));
  }

  /**
   * What the instances count while nothing but this reader talks to them, over `ms` (0: two reads
   * back to back): the cost of one read plus any background activity. Per instance.
   */
  async baseline(ms: number): Promise<Counters[]> {
    const a = await this.read();
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    const b = await this.read();
    return a.map((x, i) => delta(x, b[i] as Counters));
  }

  async close(): Promise<void> {
    await Promise.all(this.readers.map((r) => r.close()));
  }
}

/**
 * Per instance and tick: what a window of `ticks` ticks cost (`during`, read after a tick and
 * after the last one) minus what the same window costs without the daemon (`idle`).
 */
export function perTick(during: Counters[], idle: Counters[], ticks: number): { statements: number[]; connections: number[] } {
  return {
    statements: during.map((d, i) => (d.questions - (idle[i] as Counters).questions) / ticks),
    connections: during.map((d, i) => (d.connections - (idle[i] as Counters).connections) / ticks),
  };
}
