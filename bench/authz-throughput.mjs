// Check throughput: meshward authz (the generator's 200-rule policy) against a bare grpc-js server that answers OK with no
// work, side by side in one run, both loaded by h2load with the same Envoy-shaped CheckRequest.
//
//   npm run build && node bench/authz-throughput.mjs [--requests 100000] [--rounds 3]
//
// Needs h2load (Debian: nghttp2-client). Rounds alternate bare / meshward so that noise from other work on
// the machine falls on both; the figures are medians. The bar (issue 3): meshward >= 1.0x bare.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs, promisify } from 'node:util';
import { credentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { loadPolicyEngineFromText } from '../dist/authz/index.js';
import { generatePolicyYaml, sampleRequests } from './fixtures/policy-generator.mjs';

const REPO = new URL('..', import.meta.url).pathname;
const PROTO_DIR = join(REPO, 'proto/');
const { values: flags } = parseArgs({
  options: { requests: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '3' } },
});
const REQUESTS = Number(flags.requests);
const ROUNDS = Number(flags.rounds);
const H2LOAD_SHAPE = ['-m', '32', '-c', '4'];
// Envoy's ext_authz filter sends its timeout (200 ms by default) as grpc-timeout; both servers arm a deadline.
const GRPC_HEADERS = ['-H', 'content-type: application/grpc', '-H', 'te: trailers', '-H', 'grpc-timeout: 200m'];
const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

/** The first of the generator's sample requests that the 200-rule policy allows (the common case under Envoy). */
async function allowedSampleRequest(policyYaml) {
  const { engine } = loadPolicyEngineFromText(policyYaml, { label: 'policy-200' });
  for (const request of sampleRequests(200, 64)) {
    if ((await engine.decide(request)).kind === 'allow') return request;
  }
  throw new Error('none of the sample requests is allowed by the generated policy');
}

/** What Envoy's HTTP ext_authz filter sends for `request`: 15 headers (pseudo-headers included), peer, addresses. */
function envoyShapedCheckRequest(request) {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => `${PROTO_DIR}${target}`;
  root.loadSync('envoy/service/auth/v3/external_auth.proto');
  const CheckRequest = root.lookupType('envoy.service.auth.v3.CheckRequest');
  const requestId = '5f0c9a8e-1b2c-4d3e-8f90-a1b2c3d4e5f6';
  const message = CheckRequest.fromObject({
    attributes: {
      source: { address: { socketAddress: { address: request.sourceIp, portValue: 43210 } }, principal: request.principal },
      destination: { address: { socketAddress: { address: '10.1.9.9', portValue: request.destinationPort } } },
      request: {
        http: {
          id: requestId,
          method: request.method,
          path: request.path,
          host: request.host,
          scheme: 'https',
          headers: {
            ':authority': request.host,
            ':method': request.method,
            ':path': request.path,
            ':scheme': 'https',
            ...request.headers,
            'accept-encoding': 'gzip, br',
            'x-request-id': requestId,
            'x-forwarded-proto': 'https',
            'x-forwarded-for': request.sourceIp,
            'x-envoy-expected-rq-timeout-ms': '15000',
            traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
            'x-b3-sampled': '1',
            'x-meshward-principal': 'forged',
          },
        },
      },
      contextExtensions: { cluster: 'bench' },
    },
  });
  const bytes = CheckRequest.encode(message).finish();
  const framed = Buffer.alloc(5 + bytes.length);
  framed.writeUInt32BE(bytes.length, 1);
  framed.set(bytes, 5);
  return framed;
}

/** Starts a process and resolves once it reports the address it listens on (a JSON line with "address"). */
async function startServer(label, args) {
  const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MESHWARD_LOG_LEVEL: 'info' } });
  const address = await new Promise((resolve, reject) => {
    const onLine = (line) => {
      const found = /"address":"([^"]+)"/.exec(line)?.[1];
      if (found) resolve(found);
    };
    createInterface({ input: child.stdout }).on('line', onLine);
    createInterface({ input: child.stderr }).on('line', onLine);
    child.once('exit', (code) => reject(new Error(`${label} exited with ${code} before listening`)));
  });
  return { child, address };
}

/** One Check with a grpc-js client, to prove each server answers (and that meshward allows this request). */
async function verify(label, address, requestBytes, expectedPrincipal) {
  const definition = loadSync('envoy/service/auth/v3/external_auth.proto', { includeDirs: [PROTO_DIR] });
  const { Authorization, CheckRequest } = loadPackageDefinition(definition).envoy.service.auth.v3;
  const client = new Authorization(address, credentials.createInsecure());
  try {
    const response = await new Promise((resolve, reject) =>
      client.Check(CheckRequest.deserialize(requestBytes.subarray(5)), { deadline: Date.now() + 5000 }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
    const principal = response.okResponse?.headers?.find((h) => h.header.key === 'x-meshward-principal')?.header.value;
    if (response.status?.code !== 0 || (expectedPrincipal && principal !== expectedPrincipal)) {
      throw new Error(`${label} did not allow the benchmark's request: ${JSON.stringify(response)}`);
    }
  } finally {
    client.close();
  }
}

async function h2load(address, bodyFile, requests) {
  const args = ['-d', bodyFile, ...GRPC_HEADERS, ...H2LOAD_SHAPE, '-n', String(requests)];
  const { stdout } = await promisify(execFile)('h2load', [...args, `http://${address}${CHECK_PATH}`], { maxBuffer: 1 << 20 });
  const rate = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(stdout);
  const complete = stdout.includes(`requests: ${requests} total, ${requests} started, ${requests} done, ${requests} succeeded`);
  if (!rate || !complete) throw new Error(`h2load did not complete every request:\n${stdout}`);
  return Number(rate[1]);
}

// CPU time a server spent (user + system from /proc/PID/stat, in 10 ms clock ticks): unlike requests/s, CPU per
// Check hardly moves when other work shares the machine, so it shows the cost difference even on a busy host.
const CLOCK_TICK_MS = 10;
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS;
}

async function measure(server, bodyFile, requests) {
  const before = cpuMs(server.child.pid);
  const rate = await h2load(server.address, bodyFile, requests);
  return { rate, cpuUsPerCheck: ((cpuMs(server.child.pid) - before) * 1000) / requests };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'meshward-bench-'));
const servers = [];
try {
  const policyFile = join(dir, 'policy-200.yaml');
  const bodyFile = join(dir, 'check.bin');
  const policyYaml = generatePolicyYaml(200);
  const sample = await allowedSampleRequest(policyYaml);
  const requestBytes = envoyShapedCheckRequest(sample);
  writeFileSync(policyFile, policyYaml);
  writeFileSync(bodyFile, requestBytes);

  const bare = await startServer('bare grpc-js', [join(REPO, 'bench/authz-bare-server.mjs')]);
  servers.push(bare.child);
  const meshward = await startServer('meshward authz', [join(REPO, 'bin/meshward.js'), 'authz', '--policy', policyFile, '--listen', '127.0.0.1:0']);
  servers.push(meshward.child);
  await verify('bare grpc-js', bare.address, requestBytes, undefined);
  await verify('meshward authz', meshward.address, requestBytes, sample.principal);

  console.log(`h2load ${H2LOAD_SHAPE.join(' ')} -n ${REQUESTS}, ${ROUNDS} rounds; CheckRequest ${requestBytes.length} bytes framed`);
  console.log(`policy: bench/fixtures/policy-generator.mjs, 200 rules; request: ${sample.method} ${sample.host}${sample.path} from ${sample.principal}`);
  for (const server of [bare, meshward]) await h2load(server.address, bodyFile, Math.min(REQUESTS, 20_000)); // JIT warm-up
  const runs = { bare: [], meshward: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    runs.bare.push(await measure(bare, bodyFile, REQUESTS));
    runs.meshward.push(await measure(meshward, bodyFile, REQUESTS));
    const [b, m] = [runs.bare.at(-1), runs.meshward.at(-1)];
    console.log(
      `round ${round}: bare ${b.rate.toFixed(0)} req/s (${b.cpuUsPerCheck.toFixed(1)} us CPU/Check), ` +
        `meshward ${m.rate.toFixed(0)} req/s (${m.cpuUsPerCheck.toFixed(1)} us CPU/Check)`,
    );
  }
  const rate = (name) => median(runs[name].map((r) => r.rate));
  const cpu = (name) => median(runs[name].map((r) => r.cpuUsPerCheck));
  console.log(`bare grpc-js (no work):     ${rate('bare').toFixed(0)} Checks/s, ${cpu('bare').toFixed(1)} us CPU per Check (medians)`);
  console.log(`meshward authz (200 rules): ${rate('meshward').toFixed(0)} Checks/s, ${cpu('meshward').toFixed(1)} us CPU per Check (medians)`);
  console.log(
    `meshward / bare:            ${(rate('meshward') / rate('bare')).toFixed(2)}x throughput (bar: >= 1.00x), ` +
      `${(cpu('bare') / cpu('meshward')).toFixed(2)}x less CPU per Check`,
  );
} finally {
  for (const child of servers) {
    child.kill('SIGTERM');
    if (child.exitCode === null) await once(child, 'exit');
  }
  rmSync(dir, { recursive: true, force: true });
}
