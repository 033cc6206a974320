// Which spider node (and its tdbctl) a spider-master command acts on, from -c or the drop-ins.
import type { AgentConfig } from '../config/agent.js';
import { discoverInstances } from '../config/discover.js';
import { isSpiderInstance, loadInstanceConfig, TDBCTL_PORT_OFFSET, type InstanceConfig } from '../config/instance.js';
import type { Endpoint } from '../db/connect.js';
import { UsageError } from '../errors.js';

export { TDBCTL_PORT_OFFSET };

export interface SpiderTarget {
  spider: InstanceConfig;
  /** The control node beside it: [schedule] tdbctl, else spider port + 1000; same credentials unless its own ini is given. */
  tdbctl: Endpoint;
  /** Where the tdbctl address came from, for error messages. */
  tdbctlFrom: string;
}

export function resolveSpiderTarget(config: AgentConfig, files: readonly string[] | undefined): SpiderTarget {
  if (files && files.length > 0) {
    if (files.length > 2)
      throw new UsageError(`-c: give the spider node's ini, optionally with its tdbctl's ini; got ${files.length} files`);
    const loaded = files.map((f) => loadInstanceConfig(f)).sort((a, b) => a.port - b.port);
    const [spider, ctl] = loaded as [InstanceConfig, InstanceConfig | undefined];
    if (ctl && ctl.port !== spider.port + TDBCTL_PORT_OFFSET) {
      throw new UsageError(
        `-c: with two files the spider node is the lower port (${spider.port}) and the other must be its tdbctl at port ` +
          `${spider.port + TDBCTL_PORT_OFFSET}, not ${ctl.port} (${ctl.file})`,
      );
    }
    return ctl ? { spider, tdbctl: ctl, tdbctlFrom: ctl.file } : { spider, ...controlOf(config, spider) };
  }
  // tdbctl's own drop-in is not served by the agent, but names the control node's address.
  const found = discoverInstances(config.agent.configDir);
  const instances = [...found.instances, ...found.tdbctl.map((t) => t.instance)];
  const ports = new Set(instances.map((i) => i.port));
  // A tdbctl drop-in sits at a spider's port + 1000; it is not a spider node itself.
  const spiders = instances.filter((i) => isSpiderInstance(i) && !ports.has(i.port - TDBCTL_PORT_OFFSET));
  if (spiders.length !== 1) {
    throw new UsageError(
      `cannot tell which spider node to use: ${spiders.length} spider instance configs in ${config.agent.configDir}; give one with -c ` +
        `dbbackup.<port>.ini`,
    );
  }
  const spider = spiders[0] as InstanceConfig;
  const ctl = config.schedule.tdbctl ? undefined : instances.find((i) => i.port === spider.port + TDBCTL_PORT_OFFSET);
  return ctl ? { spider, tdbctl: ctl, tdbctlFrom: ctl.file } : { spider, ...controlOf(config, spider) };
}

function controlOf(config: AgentConfig, spider: InstanceConfig): { tdbctl: Endpoint; tdbctlFrom: string } {
  const credentials = { user: spider.user, password: spider.password };
  const given = config.schedule.tdbctl;
  if (given) return { tdbctl: { ...given, ...credentials }, tdbctlFrom: `[schedule] tdbctl in ${config.file ?? 'the agent config'}` };
  return {
    tdbctl: { host: spider.host, port: spider.port + TDBCTL_PORT_OFFSET, ...credentials },
    tdbctlFrom: `spider port ${spider.port} + ${TDBCTL_PORT_OFFSET}; set [schedule] tdbctl = host:port if it is elsewhere`,
  };
}
