// The entry point bundled into the installer image: `cradle installer` and its sub-commands, and
// `cradle setup` (the head-node ISO boots the same image), so the image carries none of the
// servers' code.
import { registerInstallerCommands } from './installer.ts';
import { runCradle } from './program.ts';
import { registerSetupCommands } from './setup.ts';

await runCradle([registerInstallerCommands, registerSetupCommands]);
