// The sub-commands of `cradle`, in the order `cradle --help` lists them, each with the module that
// registers it. A command line that names one (`cradle machine list`, `cradle installer --help`)
// loads only that module and what it imports; anything else (`cradle`, `cradle --help`, a typo
// that needs the list of commands to suggest one) loads them all. commands.test.ts checks that
// each module registers exactly the names listed for it.
import type { Register } from './program.ts';

export interface CommandModule {
  /** The top-level commands the module registers. */
  names: string[];
  load: () => Promise<Register>;
}

export const COMMAND_MODULES: CommandModule[] = [
  { names: ['image'], load: async () => (await import('./image.ts')).registerImageCommands },
  { names: ['imageserver'], load: async () => (await import('./imageserver.ts')).registerImageServerCommand },
  { names: ['installer'], load: async () => (await import('./installer.ts')).registerInstallerCommands },
  {
    names: ['installer-shell', 'installer-rpc'],
    load: async () => (await import('./installer-remote.ts')).registerInstallerRemoteCommands,
  },
  { names: ['server'], load: async () => (await import('./server.ts')).registerServerCommand },
  { names: ['machine', 'subnet'], load: async () => (await import('./inventory.ts')).registerInventoryCommands },
  {
    names: ['build-installer'],
    load: async () => (await import('./build-installer.ts')).registerBuildInstallerCommand,
  },
  { names: ['lab'], load: async () => (await import('./lab.ts')).registerLabCommand },
  { names: ['pki'], load: async () => (await import('./pki.ts')).registerPkiCommands },
  { names: ['kit'], load: async () => (await import('./kit.ts')).registerKitCommands },
  { names: ['nodegroup'], load: async () => (await import('./nodegroup.ts')).registerNodeGroupCommands },
  { names: ['setup'], load: async () => (await import('./setup.ts')).registerSetupCommands },
  { names: ['db'], load: async () => (await import('./db.ts')).registerDbCommands },
];

/** The commands a command line needs: the one module its first argument names, or all of them. */
export function commandsFor(first: string | undefined): Promise<Register[]> {
  const named = COMMAND_MODULES.find((m) => first !== undefined && m.names.includes(first));
  return Promise.all((named ? [named] : COMMAND_MODULES).map((m) => m.load()));
}
