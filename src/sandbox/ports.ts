// Free TCP port selection for the test topology. Ports are probed by binding the instance's own
// address; the search starts at a random offset so concurrent runs (or servers left over from a
// killed run) rarely probe the same ports. A probe can still race with another process; the
// caller retries a server start on a fresh port when mariadbd reports the port as taken.
//
// Which ports: SPIDERBACKUP_TEST_PORTS=<min>-<max> (see portPlan). Two suites given disjoint
// ranges never probe each other's ports, so they can run side by side on one machine.
import net from 'node:net';

export interface PortRange {
  min: number;
  max: number;
}

/** Where the harness puts its servers. */
export interface PortPlan {
  /** The whole range, as given (or the default). */
  range: PortRange;
  /** Masters, replicas and the tdbctl node's backing database; never in PRODUCT_SPIDER_PORTS. */
  data: PortRange[];
  /** Spider nodes; spider port + the tdbctl offset is inside `range` for every one of them. */
  spider: PortRange;
}

export const PORTS_ENV = 'SPIDERBACKUP_TEST_PORTS';
export const DEFAULT_PORT_RANGE = '20000-26899';
/**
 * spiderbackup treats an instance on one of these ports as a spider node whatever its MysqlRole
 * (src/config/instance.ts), so no master or replica may get one. A spider node outside them is
 * fine: the harness's instance inis say MysqlRole = spider_master.
 */
const PRODUCT_SPIDER_PORTS: PortRange = { min: 25000, max: 25999 };
/** Enough for a few clusters at a time (a cluster takes up to 5 data ports and 1 spider port). */
const MIN_DATA_PORTS = 20;
const MIN_SPIDER_PORTS = 4;
/** The default's proportions: 900 spider ports in 5900 spider and data ports. */
const SPIDER_SHARE = { spider: 900, of: 5900 };

/**
 * The harness's port plan for `value`, the content of SPIDERBACKUP_TEST_PORTS (`<min>-<max>`;
 * unset or empty: 20000-26899).
 *
 * The top `offset` ports of the range are kept for the tdbctl companions (spider port + offset),
 * the spider ports are the ports just below them, and the data ports everything under the spider
 * ports except 25000-25999. Spider and data ports share the rest as in the default (900 : 5000),
 * so the default range gives the usual split: data 20000-24999, spider 25000-25899, tdbctl
 * 26000-26899.
 * A bad value is a RangeError naming the variable.
 */
export function portPlan(value: string | undefined, offset: number): PortPlan {
  const given = value?.trim() ? value : undefined;
  const text = given ?? DEFAULT_PORT_RANGE;
  const bad = (why: string) => new RangeError(`${PORTS_ENV}="${text}": ${why} (expected <min>-<max>, e.g. ${PORTS_ENV}=10000-16899)`);
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(text);
  if (!m) throw bad('not a port range');
  const min = Number(m[1]);
  const max = Number(m[2]);
  if (min < 1024 || max > 65535) throw bad('ports must be within 1024-65535');
  if (min >= max) throw bad('min must be below max');
  const size = max - min + 1;
  const spiderCount = Math.max(0, Math.min(offset, Math.floor(((size - offset) * SPIDER_SHARE.spider) / SPIDER_SHARE.of)));
  const spider = { min: max - offset - spiderCount + 1, max: max - offset };
  const data = without({ min, max: spider.min - 1 }, PRODUCT_SPIDER_PORTS);
  const dataCount = data.reduce((n, r) => n + r.max - r.min + 1, 0);
  if (spiderCount < MIN_SPIDER_PORTS || dataCount < MIN_DATA_PORTS) {
    // Spider ports come first: enough of them leaves data ports to spare in a range clear of 25000-25999.
    const least =
      offset + Math.max(Math.ceil((MIN_SPIDER_PORTS * SPIDER_SHARE.of) / SPIDER_SHARE.spider), MIN_SPIDER_PORTS + MIN_DATA_PORTS);
    throw bad(
      `too small: ${size} ports give ${spiderCount} spider and ${dataCount} data ports, at least ${MIN_SPIDER_PORTS} and ` +
        `${MIN_DATA_PORTS} are needed. ` +
        `The top ${offset} ports are kept for the tdbctl companions (spider port + ${offset}) and no data port may be in ` +
        `${PRODUCT_SPIDER_PORTS.min}-${PRODUCT_SPIDER_PORTS.max} (spiderbackup takes those for spider nodes); ` +
        `${least} ports clear of ${PRODUCT_SPIDER_PORTS.min}-${PRODUCT_SPIDER_PORTS.max} are enough`,
    );
  }
  return { range: { min, max }, data, spider };
}

/** `r` minus `hole`, as 0, 1 or 2 ranges. */
function without(r: PortRange, hole: PortRange): PortRange[] {
  const out: PortRange[] = [];
  if (r.min < hole.min) out.push({ min: r.min, max: Math.min(r.max, hole.min - 1) });
  if (r.max > hole.max) out.push({ min: Math.max(r.min, hole.max + 1), max: r.max });
  return out.filter((x) => x.min <= x.max);
}

/** Whether `port` can be listened on at `host`; rejects when `host` is not an address of this machine. */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRNOTAVAIL') reject(new Error(`cannot listen on ${host}: not an address of this machine`));
      else resolve(false);
    });
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

export interface PickOptions {
  /** `port + o` must be free and not taken too, for each o (e.g. the tdbctl stand-in at spider port + 1000); taken with it. */
  companions?: number[];
  /** `port + o` must not be taken, for each o (need not be free). */
  avoid?: number[];
  /** Address the server will bind: ports are probed there. Default 127.0.0.1. */
  host?: string;
}

/**
 * Picks a port of `ranges` that is free on `host` and not in `taken`, honouring `companions` and
 * `avoid`. The chosen port and its companions are added to `taken`.
 */
export async function pickPort(ranges: PortRange[], taken: Set<number>, opts: PickOptions = {}): Promise<number> {
  const { companions = [], avoid = [], host = '127.0.0.1' } = opts;
  const size = ranges.reduce((n, r) => n + r.max - r.min + 1, 0);
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < size; i++) {
    const port = nth(ranges, (start + i) % size);
    const all = [port, ...companions.map((o) => port + o)];
    if (all.some((p) => taken.has(p)) || avoid.some((o) => taken.has(port + o))) continue;
    if (!(await allFree(all, host))) continue;
    for (const p of all) taken.add(p);
    return port;
  }
  throw new Error(`no free port in ${ranges.map((r) => `${r.min}-${r.max}`).join(', ')} on ${host}`);
}

/** The i-th port of the ranges taken one after another. */
function nth(ranges: PortRange[], i: number): number {
  for (const r of ranges) {
    const n = r.max - r.min + 1;
    if (i < n) return r.min + i;
    i -= n;
  }
  throw new RangeError(`port index ${i} out of range`);
}

async function allFree(ports: number[], host: string): Promise<boolean> {
  for (const p of ports) if (!(await isPortFree(p, host))) return false;
  return true;
}
