// node:http and node:https taken with require() instead of `import`. An ES module's import of a
// built-in makes Node build an ES facade of it, reading every export once, and node:http's lazy
// exports (WebSocket, …) then load Node's own fetch implementation (undici), which Cradle never
// uses: about a tenth of the start of a command that imports them (`cradle installer
// load-image`, measured with --cpu-prof). The installer image's bundle does the same for every
// built-in (initramfs/build.ts builtinsByRequire). Types still come from `import type http from
// 'node:http'`, which costs nothing at run time.
import type HttpModule from 'node:http';
import type HttpsModule from 'node:https';
import { createRequire } from 'node:module';

const requireBuiltin = createRequire(import.meta.url);

export const httpModule = requireBuiltin('node:http') as typeof HttpModule;
export const httpsModule = requireBuiltin('node:https') as typeof HttpsModule;

/** The module that speaks `url`'s scheme: node:https for https:, node:http for anything else. */
export function httpModuleFor(url: URL): typeof HttpModule | typeof HttpsModule {
  return url.protocol === 'https:' ? httpsModule : httpModule;
}
