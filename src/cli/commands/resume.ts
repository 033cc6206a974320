// `spiderbackup resume`: end this host's pause early.
import type { Command } from 'commander';
import { errorMessage, OperationError } from '../../errors.js';
import type { PauseState } from '../../state/pause.js';
import { print } from '../render/table.js';
import type { GlobalOptions, Register } from '../options.js';

export const register: Register = (program, setExit) => {
  program
    .command('resume')
    .description('End a pause: backups start and the schedule fires again from the next tick.')
    .option('--cluster', "end a cluster-wide pause on every instance (run on a spider node; -c: the spider node's ini)")
    .action(async (opts: { cluster?: boolean }, cmd: Command) => {
      if (opts.cluster) {
        const { clusterPauseCommand } = await import('./pause.js');
        setExit(await clusterPauseCommand(cmd.optsWithGlobals<GlobalOptions>(), 0, ''));
        return;
      }
      const config = (await import('../context.js')).agentConfigFor(cmd.optsWithGlobals<GlobalOptions>());
      const { clearPause, pauseFile } = await import('../../state/pause.js');
      let was: PauseState | undefined;
      try {
        was = clearPause(config.agent.stateDir);
      } catch (err) {
        throw new OperationError(`cannot remove ${pauseFile(config.agent.stateDir)}: ${errorMessage(err)}`);
      }
      print(was ? `Resumed (the pause until ${was.until} is lifted); backups start again at the next tick.` : 'Not paused; nothing to do.');
      setExit(0);
    });
};
