// The entry point bundled into the installer image: only `cradle installer` and its sub-commands,
// so the image carries none of the servers' code.
import { isMainThread } from 'node:worker_threads';
import { registerInstallerCommands } from './installer.ts';
import { runCradle } from './program.ts';

// The bundle is also the entry of the installer's worker threads (image/transfer/worker.ts), which
// must not run the command line again.
if (isMainThread) await runCradle([registerInstallerCommands]);
