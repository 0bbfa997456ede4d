// `meshward injector` as the API server meets it: a real child process on HTTPS, fed real AdmissionReview
// documents; the JSONPatch it answers with is applied and must give what `meshward inject` prints.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { connect } from 'node:tls';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCli, startCli, stopChild, tempDir } from '../helpers/cli.js';
import { FIXTURES, OPTIONS, yamlDocuments } from '../helpers/kube.js';

const tmp = tempDir('meshward-injector-');
let child: ChildProcess;
let output: () => string;
let port: number;
let ca: Buffer;

/** The webhook's Service name: the API server checks the serving certificate against it. */
const SERVICE_DNS = 'meshward-injector.meshward-system.svc';

/** A CA and a serving certificate signed by it, made with the openssl commands docs/kubernetes.md gives. */
function makeCert(name: string): { cert: string; key: string; ca: string } {
  const file = (ext: string) => join(tmp.dir, `${name}.${ext}`);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-days', '1', '-subj', `/CN=${name}-ca`, '-keyout', file('ca.key'), '-out', file('ca.pem'));
  openssl('req', ...ec, '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${SERVICE_DNS}`, '-keyout', file('key'), '-out', file('csr'));
  openssl('x509', '-req', '-in', file('csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-days', '1', '-copy_extensions', 'copy', '-out', file('pem'));
  return { cert: file('pem'), key: file('key'), ca: file('ca.pem') };
}

function post(path: string, body: string | Buffer, method = 'POST'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', servername: SERVICE_DNS, port, path, method, ca, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Resolves when the child's output (from now on) matches. */
function nextOutput(pattern: RegExp): Promise<void> {
  return new Promise((resolve) => {
    const onData = (d: Buffer) => {
      if (pattern.test(d.toString())) {
        child.stderr!.off('data', onData);
        resolve();
      }
    };
    child.stderr!.on('data', onData);
  });
}

const reviewText = readFileSync(join(FIXTURES, 'admission-review-pod.json'), 'utf8');

beforeAll(async () => {
  const { cert, key, ca: caFile } = makeCert('injector');
  ca = readFileSync(caFile);
  const started = await startCli(['injector', '--listen', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key, '--image', OPTIONS.image], /"address":"127\.0\.0\.1:(\d+)"[^\n]*"msg":"listening"/);
  child = started.child;
  output = started.output;
  port = Number(started.match[1]);
});

afterAll(async () => {
  if (child) expect(await stopChild(child)).toBe(0);
  tmp.cleanup();
});

describe('meshward injector', () => {
  it('answers an AdmissionReview with a patch whose result is what `meshward inject` prints', async () => {
    const res = await post('/mutate', reviewText);
    expect(res.status).toBe(200);
    const review = JSON.parse(reviewText) as { request: { uid: string; object: Record<string, unknown> } };
    const answer = JSON.parse(res.body) as { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; patchType: string; patch: string } };
    expect(answer).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch' } });

    const patch = JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8')) as Operation[];
    const patched = jsonpatch.applyPatch(structuredClone(review.request.object), patch, true).newDocument;
    const cli = await runCli(['inject', '-f', '-', '--image', OPTIONS.image], { input: stringify(review.request.object) });
    expect(cli.code).toBe(0);
    expect(yamlDocuments(cli.stdout)).toEqual([patched]);
  });

  it('allows without a patch a pod that opts out', async () => {
    const review = JSON.parse(reviewText) as { request: { uid: string; object: { metadata: Record<string, unknown> } } };
    review.request.object.metadata.annotations = { 'meshward.io/inject': 'false' };
    const res = await post('/mutate', JSON.stringify(review));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } });
  });

  it('answers malformed requests with 400 and a reason, and keeps serving', async () => {
    const notJson = await post('/mutate', '{"apiVersion": ');
    expect(notJson.status).toBe(400);
    expect(JSON.parse(notJson.body).error).toMatch(/^the request body is not JSON/);
    const v1beta1 = await post('/mutate', reviewText.replace('admission.k8s.io/v1', 'admission.k8s.io/v1beta1'));
    expect(v1beta1.status).toBe(400);
    expect(JSON.parse(v1beta1.body).error).toBe('not an admission.k8s.io/v1 AdmissionReview: apiVersion: must be "admission.k8s.io/v1"');
    const noRequest = await post('/mutate', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }));
    expect(noRequest.status).toBe(400);
    expect((await post('/mutate', '', 'GET')).status).toBe(405);
    expect((await post('/other', '{}')).status).toBe(404);
    const tooBig = await post('/mutate', Buffer.alloc(3 * 1024 * 1024 + 1, 0x20));
    expect(tooBig.status).toBe(413);

    expect((await post('/mutate', reviewText)).status).toBe(200);
    expect(child.exitCode).toBeNull();
  });

  it('serves /healthz', async () => {
    const res = await post('/healthz', '', 'GET');
    expect(res).toEqual({ status: 200, body: '{"status":"ok"}' });
  });

  it('speaks TLS 1.2 (the API server\'s minimum) and refuses older versions', async () => {
    const handshake = (maxVersion: 'TLSv1.2' | 'TLSv1.1') =>
      new Promise<string>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port, ca, servername: SERVICE_DNS, minVersion: 'TLSv1', maxVersion }, () => {
          resolve(socket.getProtocol() ?? '');
          socket.end();
        });
        socket.on('error', () => resolve('refused'));
      });
    expect(await handshake('TLSv1.2')).toBe('TLSv1.2');
    expect(await handshake('TLSv1.1')).toBe('refused');
  });

  it('reloads its certificate on SIGHUP for new connections', async () => {
    const next = makeCert('injector-renewed');
    copyFileSync(next.cert, join(tmp.dir, 'injector.pem'));
    copyFileSync(next.key, join(tmp.dir, 'injector.key'));
    const reloaded = nextOutput(/TLS certificate reloaded/);
    child.kill('SIGHUP');
    await reloaded;
    ca = readFileSync(next.ca);
    const serving = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca, servername: SERVICE_DNS }, () => {
        resolve(new X509Certificate(socket.getPeerX509Certificate()!.raw).fingerprint256);
        socket.end();
      });
      socket.on('error', reject);
    });
    expect(serving).toBe(new X509Certificate(readFileSync(next.cert)).fingerprint256);
    expect((await post('/mutate', reviewText)).status).toBe(200);
    expect(output()).not.toMatch(/"level":"(error|fatal)"/);
  });
});
