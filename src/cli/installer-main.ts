// The entry point bundled into the installer image: `cradle installer` and its sub-commands, and
// `cradle setup` (the head-node ISO boots the same image), so the image carries none of the
// servers' code.
import { isMainThread } from 'node:worker_threads';
// The modules the threads run, imported here so that the bundle evaluates them at its top level
// when a thread starts it: the commands import what they run only when they run
// (installer-commands.ts), and a module reached only through such an import is never evaluated
// in a thread, which would then exit at once, its work undone.
import '../image/unpack/cache-thread.ts';
import '../image/unpack/tree-writer-thread.ts';
import { registerInstallerCommands } from './installer.ts';
import { runCradle } from './program.ts';
import { registerSetupCommands } from './setup.ts';

// The bundle is also the entry of the installer's threads (util/threads.ts bundledOr: the object
// sources and the unpacker's writers), which must not run the command line again.
if (isMainThread) await runCradle([registerInstallerCommands, registerSetupCommands]);
