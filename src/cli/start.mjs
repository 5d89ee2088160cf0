// The entry of bin/cradle. Plain JavaScript, so that nothing needs type stripping before Node's
// compile cache is on: it turns the cache on, then loads the command (main.ts) through it.
//
// The cache holds the result of type stripping each .ts module and V8's code cache for it, so a
// start compiles nothing that has not changed since the last; without it, stripping and compiling
// the modules a command loads is most of the command's start-up.
//
// It can never run stale code: Node keys each entry by the module's path and keeps the hash of the
// source it was made from; a module whose source no longer has that hash is compiled afresh and
// its entry replaced, and an entry whose own checksum does not match (a torn write) is ignored.
// Entries are kept apart per Node version and V8 flags, so a runtime upgrade starts afresh.
//
// It lives in the checkout, .cache/node-compile-cache (ignored by git), not in Node's default under
// the shared /tmp: whoever can write there can already edit the sources beside it, so root running
// a checkout's `cradle` trusts no one new, where another user's directory in /tmp would be someone
// new. Delete it at any time. NODE_COMPILE_CACHE=<dir> puts it elsewhere,
// NODE_DISABLE_COMPILE_CACHE=1 turns it off; a checkout that cannot be written runs uncached.
import module from 'node:module';
import path from 'node:path';

module.enableCompileCache(path.join(import.meta.dirname, '../../.cache/node-compile-cache'));
await import('./main.ts');
