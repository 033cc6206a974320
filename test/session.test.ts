// The cluster session (src/cluster/session.ts) against a real spider node and the tdbctl stand-in:
// tdbctl is asked once per session however often its answer is needed, again only after
// askAgain(); not the primary is NotPrimaryError with the one wording. Asks are counted as the
// connections the stand-in opens to its backing database, one per ask.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadAgentConfig, type AgentConfig } from '../src/config/agent.js';
import { NotPrimaryError, openClusterSession } from '../src/cluster/session.js';
import type { Instance } from '../src/sandbox/cluster.js';
import { setUpCluster, type ClusterWorkspace, type TestCluster } from './support/cluster.js';

describe('cluster session', { timeout: 300_000 }, () => {
  let cluster: TestCluster<'ws'>;
  let ws: ClusterWorkspace;
  let config: AgentConfig;
  let spiderIni: string;

  /** Connections the tdbctl backend has accepted so far (this count's own included). */
  const backendConnections = async () => {
    const [row] = await cluster.query<{ Value: string }>(cluster.tdbctlNode as Instance, "SHOW GLOBAL STATUS LIKE 'Connections'");
    return Number(row?.Value);
  };
  /** How many times tdbctl was asked while `fn` ran. */
  const asks = async (fn: () => Promise<unknown>) => {
    const before = await backendConnections();
    await fn();
    return (await backendConnections()) - before - 1;
  };

  before(async () => {
    cluster = await setUpCluster({ shards: 1, slaves: [], tdbctl: true, workspaces: { ws: {} } });
    ({ ws } = cluster.workspaces);
    spiderIni = ws.iniFile(cluster.spider);
    config = loadAgentConfig(ws.agentIni);
  });

  after(() => cluster?.close());

  it('asks tdbctl once for primacy and mysql.servers, and again after askAgain()', async () => {
    const session = openClusterSession(config, [spiderIni]);
    try {
      let servers: string[] = [];
      const n = await asks(async () => {
        const all = await Promise.all([session.primaryServers(), session.primaryServers()]);
        servers = (await session.primaryServers()).map((s) => s.serverName).sort();
        assert.equal(all[0], all[1]);
      });
      assert.equal(n, 1);
      assert.deepEqual(servers, ['SPIDER0', 'SPT0', 'TDBCTL0']);
      session.askAgain();
      assert.equal(await asks(() => session.primaryServers()), 1);
    } finally {
      await session.close();
    }
  });

  it('elsewhere than on the primary: NotPrimaryError, worded once; mysql.servers still readable', async () => {
    const tdbctl = cluster.tdbctl;
    assert.ok(tdbctl);
    tdbctl.setPrimary(false);
    const session = openClusterSession(config, [spiderIni]);
    try {
      const spider = `${cluster.spider.host}:${cluster.spider.port}`;
      await assert.rejects(session.primaryServers(), (err: unknown) => {
        assert.ok(err instanceof NotPrimaryError);
        assert.equal(err.spider, spider);
        const ctl = cluster.tdbctlNode!;
        assert.equal(
          err.message,
          `${spider} is not the primary spider node (tdbctl get primary); the primary is tdbctl TDBCTL0 ${ctl.host}:${ctl.port}, ` +
            `its spider node SPIDER0 ${spider}`,
        );
        return true;
      });
      assert.ok((await session.servers()).some((s) => s.serverName === 'SPT0'));
    } finally {
      tdbctl.setPrimary(true);
      await session.close();
    }
  });
});
