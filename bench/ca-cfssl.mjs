import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { freePort, startChild, waitReady } from './ca-procs.mjs';

// Go's cfssl as the yardstick: `cfssl serve` with an ECDSA P-256 CA it made itself, signing over plain HTTP
// (its default; meshward signs over TLS), with its default logging (several lines per request).

export function cfsslAvailable(bin) {
  try {
    execFileSync(bin, ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function startCfssl({ bin, dir }) {
  const init = JSON.parse(
    execFileSync(bin, ['gencert', '-initca', '-'], {
      input: JSON.stringify({ CN: 'cfssl bench CA', key: { algo: 'ecdsa', size: 256 } }),
      stdio: ['pipe', 'pipe', 'ignore'],
    }).toString(),
  );
  writeFileSync(join(dir, 'ca.pem'), init.cert);
  writeFileSync(join(dir, 'ca-key.pem'), init.key, { mode: 0o600 });
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ signing: { default: { expiry: '1h', usages: ['digital signature', 'server auth', 'client auth'] } } }),
  );
  const port = await freePort();
  const proc = startChild(
    bin,
    ['serve', '-ca', join(dir, 'ca.pem'), '-ca-key', join(dir, 'ca-key.pem'), '-config', join(dir, 'config.json'), '-address', '127.0.0.1', '-port', String(port)],
    { logFile: join(dir, 'cfssl.log') },
  );
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sign = (body) =>
    new Promise((resolve, reject) => {
      const req = request(
        { agent, host: '127.0.0.1', port, method: 'POST', path: '/api/v1/cfssl/sign', headers: { 'content-type': 'application/json', 'content-length': body.length } },
        (res) => {
          const parts = [];
          res.on('data', (c) => parts.push(c));
          res.on('end', () => {
            const text = Buffer.concat(parts).toString();
            let reply;
            try {
              reply = JSON.parse(text);
            } catch {
              reply = undefined;
            }
            if (res.statusCode === 200 && reply?.success && reply.result?.certificate) resolve(reply.result.certificate);
            else reject(new Error(`cfssl answered ${res.statusCode}: ${text.slice(0, 200)}`));
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const bodies = [];
  return {
    ...proc,
    /** Pre-encodes the request bodies so the client measures the server, not JSON.stringify. */
    useCsrs(csrs) {
      bodies.length = 0;
      for (const csr of csrs) bodies.push(Buffer.from(JSON.stringify({ certificate_request: csr })));
    },
    sign: (i) => sign(bodies[i % bodies.length]),
    ready: (csr) => waitReady(() => sign(Buffer.from(JSON.stringify({ certificate_request: csr }))), { child: proc.child, what: 'cfssl serve' }),
    async stop() {
      agent.destroy();
      await proc.stop(5_000);
    },
  };
}
