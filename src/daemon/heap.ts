// The daemon's heap sizing. An idle daemon holds little, but every tick allocates in a burst
// (connections, rows, the status file), and V8 answers bursts by growing the young generation up
// to 16 MiB semi-spaces (48 MiB of young generation on 64-bit), which it rarely gives back: RSS
// then sits 30-60 MiB above what the daemon holds, more with more instances. Kept at its initial
// size (1 MiB semi-spaces), the young generation costs a few more scavenges of well under a
// millisecond each: no CPU to speak of, and a third less peak RSS at 64 instances (the RSS rows
// of `npm run bench`).
import { setFlagsFromString } from 'node:v8';

/**
 * Called once by `spiderbackup daemon`, before the daemon's modules load. `--max-semi-space-size`
 * would need to be on node's command line (V8 reads it once, when the heap is set up), which
 * neither the unit (`/usr/bin/spiderbackup daemon`) nor `node cli.js daemon` has. The growth
 * factor is read at every growth, so setting it to 1 now keeps the young generation as it is.
 * Node keeps V8's flags writable for this (v8.setFlagsFromString).
 */
export function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}
