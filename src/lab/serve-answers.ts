// The web server a site would put a head node's answer file on, for the head-node lab's
// `--answers`: HTTPS on the lab's public network (in its namespace), one file at /answers.yaml,
// with a certificate of the lab's CA whose fingerprint the ISO's kernel line pins. Runs as
//   node src/lab/serve-answers.ts CERT KEY FILE ADDRESS:PORT
// through LabNetwork.spawn; bounded like Cradle's own servers (util/http/connections.ts).
import fs from 'node:fs';
import type https from 'node:https';
import { DEFAULT_LIMITS, guardConnections, HTTP_SERVER_OPTIONS } from '../util/http/connections.ts';
import { parseTarget } from './relay.ts';
import { httpsModule } from '../util/http/node-http.ts';
import { SERVER_TLS_PROFILE } from '../util/http/tls.ts';

/** Where the answers are on the server. */
export const ANSWERS_PATH = '/answers.yaml';

/** The command that runs this server on the pinned runtime, TypeScript run directly as bin/cradle does. */
export function serveAnswersCommand(o: { cert: string; key: string; file: string; listen: string }): string[] {
  return [
    process.execPath,
    '--disable-warning=ExperimentalWarning',
    import.meta.filename,
    o.cert,
    o.key,
    o.file,
    o.listen,
  ];
}

export function serveAnswers(o: { cert: string; key: string; file: string; listen: string }): Promise<https.Server> {
  const { host, port } = parseTarget(o.listen);
  // Read once: what the lab wrote for this run is what is served.
  const body = fs.readFileSync(o.file);
  const server = httpsModule.createServer(
    { ...HTTP_SERVER_OPTIONS, ...SERVER_TLS_PROFILE, cert: fs.readFileSync(o.cert), key: fs.readFileSync(o.key) },
    (req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') res.writeHead(405, { allow: 'GET, HEAD' }).end();
      else if (req.url !== ANSWERS_PATH) res.writeHead(404).end(`only ${ANSWERS_PATH} is here\n`);
      else res.writeHead(200, { 'content-type': 'application/yaml', 'content-length': body.length }).end(body);
      console.log(`${new Date().toISOString()} ${req.socket.remoteAddress} ${req.method} ${req.url} ${res.statusCode}`);
    },
  );
  guardConnections(server, [server], { ...DEFAULT_LIMITS, maxConnections: 64 });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

if (import.meta.main) {
  const [cert, key, file, listen] = process.argv.slice(2);
  if (!listen) {
    console.error('usage: serve-answers.ts CERT KEY FILE ADDRESS:PORT');
    process.exit(2);
  }
  const server = await serveAnswers({ cert, key, file, listen });
  console.log(`answers ${file} at https://${listen}${ANSWERS_PATH}`);
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
}
