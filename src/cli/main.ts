// The `cradle` command: argument parsing only; the work happens in the modules it calls.
// bin/cradle starts it through start.mjs, which turns Node's compile cache on first.
//
// Start-up is paid by every command, every status bar and every hook that runs one, so only the
// modules the command line needs are loaded: `cradle --version` loads no command (runCradle),
// `cradle machine list` only the module of `machine` (commands.ts).
import { commandsFor } from './commands.ts';
import { runCradle } from './program.ts';

await runCradle(() => commandsFor(process.argv[2]));
