// The entry point bundled into the installer image: only `cradle installer` and its sub-commands,
// so the image carries none of the servers' code.
import { registerInstallerCommands } from './installer.ts';
import { runCradle } from './program.ts';

await runCradle([registerInstallerCommands]);
