// The repository a command or the agent uses: `[repository]` of the agent config, its prefix from
// the drop-ins it serves (README "Repository"). One function, so every reader opens it alike.
import type { AgentConfig } from '../config/agent.js';
import { discoverInstances } from '../config/discover.js';
import { openRepository, type Repository } from './repository.js';

/** The configured repository, or undefined without `[repository]` (backups stay in BackupDir). */
export async function configuredRepository(config: AgentConfig, files?: readonly string[]): Promise<Repository | undefined> {
  if (!config.repository) return undefined;
  // The prefix needs the drop-ins only when [repository] prefix is not set.
  const found = config.repository.prefix === undefined ? discoverInstances(config.agent.configDir, files) : undefined;
  const instances = found ? [...found.instances, ...found.tdbctl.map((t) => t.instance)] : [];
  return openRepository(config.repository, instances);
}
