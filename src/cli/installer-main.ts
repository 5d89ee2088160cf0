// The entry point bundled into the installer image: `cradle installer` and its sub-commands, and
// `cradle setup` (the head-node ISO boots the same image), so the image carries none of the
// servers' code.
import { isMainThread } from 'node:worker_threads';
import './bundled-threads.ts';
import { registerInstallerCommands } from './installer.ts';
import { runCradle } from './program.ts';
import { registerSetupCommands } from './setup.ts';

// The bundle is also the entry of the installer's threads (bundled-threads.ts), which must not run
// the command line again.
if (isMainThread) await runCradle([registerInstallerCommands, registerSetupCommands]);
