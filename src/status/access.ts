// Who may call which of the installer's RPC methods (docs/installer-status.md, "Who may do what").
// Dominator's installer has one method, Installer.Shell, and lets a client call it when its
// certificate names it; Cradle's RPC has more, each named as Dominator would. A certificate of the
// installer's CA that names no methods may call every one (Cradle's certificates from before the
// list); one that names some may call those. A certificate of the identity CA (-identityCAfile)
// says who someone is and grants no method: it may read (status, logs), never act. Pure.
import { methodAllowed } from '../pki/methods.ts';
import { HttpError } from '../util/http/respond.ts';

export type InstallerMethod =
  | 'Installer.Shell'
  | 'Installer.Status'
  | 'Installer.Logs'
  | 'Installer.BlockReboot'
  | 'Installer.UnblockReboot'
  | 'Installer.RebootNow'
  | 'Installer.Retry';

/** The RPC routes and their methods (the shell is its WebSocket, /api/v1/shell). */
export const ROUTE_METHODS: Readonly<Record<string, InstallerMethod>> = {
  'GET /api/v1/status': 'Installer.Status',
  'GET /api/v1/logs': 'Installer.Logs',
  'POST /api/v1/reboot/block': 'Installer.BlockReboot',
  'POST /api/v1/reboot/unblock': 'Installer.UnblockReboot',
  'POST /api/v1/reboot/now': 'Installer.RebootNow',
  'POST /api/v1/retry': 'Installer.Retry',
  'GET /api/v1/shell': 'Installer.Shell',
};

/** What reading is: all an identity certificate may do. */
export const READ_METHODS: readonly InstallerMethod[] = ['Installer.Status', 'Installer.Logs'];

export interface Caller {
  /** The certificate's common name. */
  name: string;
  /** The methods its certificate names; undefined: it names none (every method). */
  methods?: readonly string[];
  /** Its certificate is the identity CA's, not the installer's CA's: reading only. */
  identityOnly: boolean;
}

/** Returns when `caller` may call `method`; else a 403 naming the method and how to get it. */
export function authorise(caller: Caller, method: InstallerMethod): void {
  const read = READ_METHODS.includes(method);
  const listed = !caller.methods || methodAllowed(caller.methods, method);
  if ((caller.identityOnly ? read : true) && listed) return;
  const get = `cradle pki issue client ${caller.name} --methods ${method} --dir CA-DIR --out DIR, with the installer's CA (or one without --methods, for every method)`;
  if (caller.identityOnly && !read)
    throw new HttpError(
      403,
      'method not permitted',
      `${method} is refused to '${caller.name}': the certificate is the identity CA's, which says who you are but grants no method beyond reading (${READ_METHODS.join(', ')}); for ${method} use a certificate of the installer's CA: ${get}`,
    );
  throw new HttpError(
    403,
    'method not permitted',
    `${method} is refused to '${caller.name}': the certificate permits only ${caller.methods?.length ? caller.methods.join(', ') : 'no method'}; for ${method} get one that names it: ${get}`,
  );
}
