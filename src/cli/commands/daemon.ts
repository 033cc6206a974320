// `spiderbackup daemon`: the agent itself (src/daemon/), meant for systemd.
import type { Command } from 'commander';
import { errorMessage } from '../../errors.js';
import type { GlobalOptions, Register } from '../options.js';

export const register: Register = (program, setExit, held) => {
  program
    .command('daemon')
    .description(
      'Run the agent: the check step every [agent] tick_interval, the daily schedule from [schedule] cron, metrics. Meant for systemd.',
    )
    .addHelpText(
      'after',
      '\nSignals: SIGHUP reloads the agent config and reopens the log file, SIGUSR2 reopens the log file, SIGTERM/SIGINT stop (running ' +
        'backups go on).',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      (await import('../../daemon/heap.js')).keepYoungGenerationSmall();
      const [{ runDaemon }, { MetricsListenError }, { LockHeldError }] = await Promise.all([
        import('../../daemon/daemon.js'),
        import('../../daemon/http.js'),
        import('../../daemon/lock.js'),
      ]);
      try {
        setExit(
          await runDaemon({
            agentConfigFile: g.agentConfig,
            strict: g.strict === true,
            ...(held ? { signals: held } : {}),
            // Loaded at the first drill, not with the daemon: most hosts never drill.
            runRestore: async (...args) => (await import('../../recovery/run-restore.js')).runRestore(...args),
          }),
        );
      } catch (err) {
        if (!(err instanceof LockHeldError || err instanceof MetricsListenError)) throw err;
        process.stderr.write(`spiderbackup: ${errorMessage(err)}\n`);
        setExit(1);
      }
      // Supervisors started by this process are detached but still hold handles here; they must
      // neither keep the daemon alive nor be waited for.
      process.exit(process.exitCode ?? 0);
    });
};
