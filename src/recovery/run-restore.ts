// PLACEHOLDER until the `restore` command's coordinator (branch wip-restorecmd) is merged: the
// drill (src/daemon/drill.ts) is built against this signature, and this file is replaced at merge.
import type { AgentConfig } from '../config/agent.js';
import type { RestoreEvent, RestoreOutcome, RestoreRequest } from './job.js';

export function runRestore(
  _config: AgentConfig,
  _req: RestoreRequest,
  _onEvent?: (e: RestoreEvent) => void,
  _signal?: AbortSignal,
): Promise<RestoreOutcome> {
  return Promise.resolve({ dryRun: false, problems: ['the restore command is not built yet'], plan: [] });
}
