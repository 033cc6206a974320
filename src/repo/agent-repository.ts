// The repository as an agent config names it: `[repository]` plus the drop-ins of config_dir (the
// prefix defaults to the cluster they name). The daemon's periodic check, the supervisor and the
// built-in runners open it this way, so all of them agree on the store and the prefix.
import { loadAgentConfig, type AgentConfig } from '../config/agent.js';
import { discoverInstances } from '../config/discover.js';
import { errorMessage } from '../errors.js';
import { openRepository, type Repository } from './repository.js';
import { RepoError } from './store.js';

/**
 * The agent config a backup runs with, as the daemon read it: the file and the directory its
 * relative paths were resolved against (a runner's own working directory is install_dir).
 */
export interface AgentConfigRef {
  file: string;
  cwd: string;
}

/**
 * The configured repository, or undefined without `[repository]` (backups stay in BackupDir).
 * Every reader and writer opens it here, so all agree on the store and the prefix. `files`: the
 * drop-ins a command was given (-c), else those of config_dir.
 */
export async function configuredRepository(
  config: Pick<AgentConfig, 'agent' | 'repository'>,
  files?: readonly string[],
): Promise<Repository | undefined> {
  if (!config.repository) return undefined;
  // The prefix needs the drop-ins only when [repository] prefix is not set; unreadable ones are
  // the tick's to report, the prefix needs only those that load.
  const found = config.repository.prefix === undefined ? discoverInstances(config.agent.configDir, files) : undefined;
  const instances = found ? [...found.instances, ...found.tdbctl.map((t) => t.instance)] : [];
  return openRepository(config.repository, instances);
}

/** The configured repository for the agent's own use; a RepoError naming the problem (no [repository], an unreadable key …). */
export async function openAgentRepository(config: Pick<AgentConfig, 'file' | 'agent' | 'repository'>): Promise<Repository> {
  try {
    const repo = await configuredRepository(config);
    if (repo === undefined) throw new RepoError(`${config.file ?? '(defaults)'}: no [repository] section`);
    return repo;
  } catch (err) {
    if (err instanceof RepoError) throw err;
    throw new RepoError(`repository of ${config.file ?? '(defaults)'}: ${errorMessage(err)}`, undefined, { cause: err });
  }
}

/** Loads the agent config `ref` names and opens its repository (supervisor and runner). */
export async function openRepositoryOf(ref: AgentConfigRef): Promise<Repository> {
  let config: AgentConfig;
  try {
    config = loadAgentConfig(ref.file, ref.cwd);
  } catch (err) {
    throw new RepoError(`cannot read the agent config ${ref.file}: ${errorMessage(err)}`, undefined, { cause: err });
  }
  return openAgentRepository(config);
}

/** "posix /mnt/backup:c1/backups/<id>/<host>_<port>/": where a backup is, for the verdict row and messages. */
export const locationOf = (repo: Repository, key: string): string => `${repo.store.where}:${key}`;

/** `posix` or `s3`, for a status that must stay short; `repository` when the config cannot say. */
export function storeTypeOf(ref: AgentConfigRef): string {
  try {
    return loadAgentConfig(ref.file, ref.cwd).repository?.store.type ?? 'repository';
  } catch {
    return 'repository';
  }
}

/** Lets go of the store's connections (an S3 client's sockets) when it has any: a long-lived process opens it again and again. */
export function closeRepository(repo: Repository): void {
  (repo.store as Partial<{ close(): void }>).close?.();
}
