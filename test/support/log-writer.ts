// A long-lived process that logs like a backup's supervisor, through the real src/log.ts, to a
// file that the tests rotate with logrotate. Started with fork() (an IPC channel):
//   {line: msg, backupId}  log one line (seq numbers count up) and answer {done: seq}
//   {every: ms, backupId}  also log a line every ms, until {stop: true}
//   {stop: true}           stop the timer, answer {stopped: lastSeq}
// It answers {ready: true} once the logger is set up. Options: --file F, --no-follow (the
// destination does not follow rotation), --signals (reopenOnSignals).
import { parseArgs } from 'node:util';
import { createLogger, reopenOnSignals } from '../../src/log.js';

export type WriterRequest = { line: string; backupId: string } | { every: number; backupId: string } | { stop: true };
export type WriterReply = { ready: true } | { done: number } | { stopped: number };

const { values } = parseArgs({ options: { file: { type: 'string' }, 'no-follow': { type: 'boolean' }, signals: { type: 'boolean' } } });
if (values.file === undefined || process.send === undefined) {
  process.stderr.write('log-writer: --file is required, and it runs under fork()\n');
  process.exit(2);
}
const agent = createLogger({ file: values.file, name: 'supervisor', followRotation: values['no-follow'] !== true });
if (values.signals) reopenOnSignals(agent);
const send = (m: WriterReply) => process.send?.(m);

let seq = 0;
let timer: NodeJS.Timeout | undefined;
const log = (backupId: string, msg: string) => {
  seq += 1;
  agent.logger.child({ backupId, port: 20000 }).info({ seq }, msg);
  return seq;
};

process.on('message', (m: WriterRequest) => {
  if ('line' in m) send({ done: log(m.backupId, m.line) });
  else if ('every' in m) {
    clearInterval(timer);
    timer = setInterval(() => log(m.backupId, 'tick'), m.every);
  } else if ('stop' in m) {
    clearInterval(timer);
    timer = undefined;
    agent.flush();
    send({ stopped: seq });
  }
});
// The test going away ends us too.
process.on('disconnect', () => process.exit(0));
send({ ready: true });
