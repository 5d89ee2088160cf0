// The `cradle` command: argument parsing only; the work happens in the modules it calls.
import { registerBuildInstallerCommand } from './build-installer.ts';
import { registerDbCommands } from './db.ts';
import { registerImageCommands } from './image.ts';
import { registerImageServerCommand } from './imageserver.ts';
import { registerInstallerCommands } from './installer.ts';
import { registerInstallerRemoteCommands } from './installer-remote.ts';
import { registerInventoryCommands } from './inventory.ts';
import { registerKitCommands } from './kit.ts';
import { registerLabCommand } from './lab.ts';
import { registerNodeGroupCommands } from './nodegroup.ts';
import { registerPkiCommands } from './pki.ts';
import { runCradle } from './program.ts';
import { registerServerCommand } from './server.ts';
import { registerSetupCommands } from './setup.ts';

await runCradle([
  registerImageCommands,
  registerImageServerCommand,
  registerInstallerCommands,
  registerInstallerRemoteCommands,
  registerServerCommand,
  registerInventoryCommands,
  registerBuildInstallerCommand,
  registerLabCommand,
  registerPkiCommands,
  registerKitCommands,
  registerNodeGroupCommands,
  registerSetupCommands,
  registerDbCommands,
]);
