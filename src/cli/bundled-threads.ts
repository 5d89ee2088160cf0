// The modules the threads of a bundle run (the installer image's, the Cradle kit's). A thread
// started from a bundle runs the bundle itself (util/threads.ts bundledOr), each module acting only
// on the workerData meant for it, so each such module must be evaluated at the bundle's top level.
// A bundle's entry imports this module for that: a module reached only through a dynamic import
// (the commands import what they run when they run) is never evaluated in a thread, which would
// then exit at once, its work undone.
import '../image/unpack/cache-thread.ts';
import '../image/unpack/tree-writer-thread.ts';
