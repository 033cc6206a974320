// The daemon's look at the repository ([repository]): at start, on reload, after a backup of this
// host failed, and then at most every REPO_EVERY_MS (not every tick: an idle tick stays as cheap as
// without a repository), off the tick. A problem is logged once per change and kept for `status`;
// it never stops the daemon, and the next backup fails by the same name.
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/agent.js';
import { singleFlight } from './single-flight.js';
import { errorMessage } from '../errors.js';
import { closeRepository, openAgentRepository } from '../repo/agent-repository.js';
import type { Repository } from '../repo/repository.js';

export const REPO_EVERY_MS = 5 * 60_000;

export interface RepoWatchDeps {
  config: () => Pick<AgentConfig, 'file' | 'agent' | 'repository'>;
  logger: () => Logger;
  /** A look changed what `status` shows; `problem` when the repository cannot be used. */
  onChange: (problem: string | undefined) => void;
}

export interface RepoWatch {
  /** Starts a look if none runs and the last is REPO_EVERY_MS old (or `force`). */
  poke(now: number, force?: boolean): void;
  /** For `status`: "posix /x, prefix c1: ok", or what is wrong; undefined without [repository]. */
  line(): string | undefined;
  inFlight(): Promise<void> | undefined;
}

export function createRepoWatch(deps: RepoWatchDeps): RepoWatch {
  let lastAt: number | undefined;
  let shown: string | undefined;

  const settle = (line: string | undefined, problem: string | undefined) => {
    if (line === shown) return;
    const log = deps.logger();
    if (problem !== undefined)
      log.error({ err: problem }, 'the repository cannot be used; backups of this host fail until it can (said once until it changes)');
    else if (line !== undefined) log.info({ repository: line }, 'repository checked');
    shown = line;
    deps.onChange(problem);
  };

  const look = async (): Promise<void> => {
    const config = deps.config();
    if (config.repository === undefined) return settle(undefined, undefined);
    let where =
      config.repository.store.type === 'posix' ? `posix ${config.repository.store.path}` : `s3 bucket ${config.repository.store.bucket}`;
    let repo: Repository | undefined;
    try {
      repo = await openAgentRepository(config);
      where = repo.where;
      await repo.store.check();
      settle(`${where}: ok`, undefined);
    } catch (err) {
      const message = errorMessage(err);
      settle(`${where}: ${message}`, message);
    } finally {
      if (repo) closeRepository(repo);
    }
  };

  const flight = singleFlight((err) => deps.logger().error({ err: errorMessage(err) }, 'repository check failed'));
  return {
    poke(now, force = false) {
      if (flight.inFlight() !== undefined) return;
      if (!force && lastAt !== undefined && now - lastAt < REPO_EVERY_MS) return;
      lastAt = now;
      flight.run(look);
    },
    line: () => shown,
    inFlight: flight.inFlight,
  };
}
