// Objects straight from a local store, for unpacking where the store itself is at hand (a head
// node installing itself from its depot): each object is verified against its digest as it is read.
import type { ObjectFetcher } from '../model/objects.ts';
import type { ImageStore } from './store.ts';

export function storeFetcher(store: ImageStore): ObjectFetcher {
  return {
    async fetch(objects, onObject) {
      for (const o of objects) onObject(o.digest, await store.readObject(o.digest));
    },
  };
}
