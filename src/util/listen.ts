// Listening as a promise: resolves with the address (the port, when 0 asked for any free one),
// rejects with the error (EADDRINUSE, EACCES) instead of leaving it to an 'error' event.
import type net from 'node:net';

export function listen(server: net.Server, port: number, host?: string): Promise<net.AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as net.AddressInfo);
    });
  });
}
