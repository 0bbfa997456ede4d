// `meshward authz` without TLS: on a non-loopback address anyone on the path could read Checks and forge their
// answers, so it does not start unless told `--insecure-plaintext`; on loopback it starts and says once that it
// serves in plaintext. The real CLI, a real client.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { authorizationClient, check, envoyCheckRequest } from '../conformance/envoy-client.js';
import { REPO_ROOT, runCli, startCli, stopChild } from '../helpers/cli.js';

const POLICY = join(REPO_ROOT, 'test/fixtures/authz/policy.yaml');
const LISTENING = /^.*"msg":"listening".*$/m;
const PLAINTEXT_WARNING = /"level":"warn".*"msg":"serving Check without TLS/g;

/** Starts authz, answers three Checks, stops it; returns everything it logged. */
async function serveAndCheck(listen: string, extra: string[] = []): Promise<string> {
  const { child, match, output } = await startCli(['authz', '--policy', POLICY, '--listen', listen, ...extra], LISTENING);
  const { address } = JSON.parse(match[0]) as { address: string };
  const port = address.slice(address.lastIndexOf(':') + 1);
  const client = authorizationClient(`127.0.0.1:${port}`);
  try {
    for (let i = 0; i < 3; i++) expect((await check(client, envoyCheckRequest())).status.code).toBeTypeOf('number');
  } finally {
    client.close();
    expect(await stopChild(child)).toBe(0);
  }
  return output();
}

describe('meshward authz without TLS', () => {
  it.each(['0.0.0.0:0', '[::]:0'])('refuses to start on %s, a non-loopback address (exit 1), and says what to do', async (listen) => {
    const r = await runCli(['authz', '--policy', POLICY, '--listen', listen]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`meshward authz: refusing to serve Check without TLS on ${listen.replace(/:0$/, '').replace(/^\[(.*)\]$/, '$1')}, which is not a loopback address`);
    expect(r.stderr).toContain('--tls-cert, --tls-key and --tls-ca');
    expect(r.stderr).toContain('--insecure-plaintext');
  });

  it('starts on a non-loopback address with --insecure-plaintext, and warns once', async () => {
    const output = await serveAndCheck('0.0.0.0:0', ['--insecure-plaintext']);
    expect(output.match(PLAINTEXT_WARNING)).toHaveLength(1);
  });

  it('starts on loopback and warns once that it serves in plaintext', async () => {
    const output = await serveAndCheck('127.0.0.1:0');
    expect(output.match(PLAINTEXT_WARNING)).toHaveLength(1);
  });
});
