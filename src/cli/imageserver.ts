// `cradle imageserver`: serve a store over HTTP(S).
import path from 'node:path';
import type { Command } from 'commander';
import { IMAGESERVER_PORT } from '../util/ports.ts';
import { ImageStore } from '../image/store/store.ts';
import { DEFAULT_LIMITS } from '../util/http/connections.ts';
import { DEFAULT_STORE } from './image.ts';
import { addConnectionLimitOptions, connectionLimits, type ConnectionLimitFlags } from './program.ts';

export function registerImageServerCommand(program: Command): void {
  const cmd = program
    .command('imageserver')
    .description('serve images and objects over HTTP(S) (docs/imageserver-api.md)')
    .option('--store <dir>', 'image store directory (env CRADLE_STORE)', DEFAULT_STORE)
    .option('--depot <dir>', "serve a depot's store (DIR/images: its kits' and node groups' images) instead of --store")
    .option('--listen <address>', 'address to listen on (default: all)')
    .option('--port <port>', 'TCP port', String(IMAGESERVER_PORT))
    .option('--log-level <level>', 'log level: error, warn, info, debug (debug logs every request)', 'info')
    .option('--cache-mib <n>', 'memory for recently served objects, in MiB (0: none)', '256')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'private key of --tls-cert (PEM)')
    .option('--tls-ca <file>', 'require client certificates signed by this CA (PEM)');
  addConnectionLimitOptions(cmd, DEFAULT_LIMITS).action(
    async (
      o: {
        store: string;
        depot?: string;
        listen?: string;
        port: string;
        cacheMib: string;
        logLevel: string;
        tlsCert?: string;
        tlsKey?: string;
        tlsCa?: string;
      } & ConnectionLimitFlags,
    ) => {
      const limits = connectionLimits(o, DEFAULT_LIMITS);
      if (!!o.tlsCert !== !!o.tlsKey)
        throw new Error('--tls-cert and --tls-key go together: give both, or neither for plain HTTP');
      if (o.tlsCa && !o.tlsCert)
        throw new Error('--tls-ca needs --tls-cert and --tls-key: client certificates are only checked over HTTPS');
      const store = ImageStore.open(o.depot ? path.join(o.depot, 'images') : o.store);
      const { createImageServer, listen } = await import('../image/transfer/server.ts'); // metrics libraries load only here
      const cacheMiB = Number(o.cacheMib);
      if (!Number.isFinite(cacheMiB) || cacheMiB < 0)
        throw new Error(`--cache-mib must be a number of MiB (0 or more), not '${o.cacheMib}'`);
      const tls = o.tlsCert ? { cert: o.tlsCert, key: o.tlsKey!, ca: o.tlsCa } : undefined;
      const { pino } = await import('pino');
      const logger = pino({ level: o.logLevel, base: { service: 'imageserver' } });
      const server = createImageServer({ store, tls, cacheMiB, logger, limits });
      const addr = await listen(server, Number(o.port), o.listen);
      const scheme = o.tlsCert ? 'https' : 'http';
      const url = `${scheme}://${addr.address}:${addr.port}`;
      logger.info(
        { store: store.root, url, clientCertificates: !!o.tlsCa },
        `imageserver serving ${store.root} on ${url}`,
      );
      const stop = () => {
        server.close(() => process.exit(0));
        // Idle keep-alive connections go at once; a batch still streaming gets 10 s to finish.
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 10_000).unref();
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
  );
}
