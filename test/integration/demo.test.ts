import { exec } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli, startCli, stopChild } from '../helpers/cli.js';

// Issue 6: "README's first command (after `npm ci`) runs `meshward demo` … It exits 0 and cleans up after itself,
// also on Ctrl-C … `--keep` leaves it running, printing the admin URLs and curl commands to try. … every command
// [the README] shows is run by a test." The README's "Start here" commands are read from README.md itself, so the
// test runs what a newcomer would type. `npm run build` first: the CLI runs from dist/.

const run = promisify(exec);

function startHereCommands(): string[] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const section = /^## Start here\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? '';
  const blocks = [...section.matchAll(/^```sh\n([\s\S]*?)^```/gm)].map((m) => m[1]!);
  return blocks.flatMap((b) => b.split('\n')).map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l !== '');
}

/** The working directory the demo announces; it must be gone when the demo has exited. */
function announcedDir(output: string): string {
  const dir = /^working directory (\S+) /m.exec(output)?.[1];
  expect(dir, output).toMatch(/meshward-demo-/);
  return dir!;
}

function expectChecksPassed(stdout: string): void {
  expect(stdout).not.toMatch(/^FAIL/m);
  expect(stdout).toMatch(/^ok +GET \/api\/orders\/42 +\| web +\| 200 allowed +\| rule web-reads-orders$/m);
  expect(stdout).toMatch(/^ok +POST \/api\/orders +\| web +\| 403 denied +\| rule default$/m);
  expect(stdout).toMatch(/^ok +GET \/api\/admin +\| web +\| 403 denied +\| rule default$/m);
  expect(stdout).toMatch(/^ok +GET \/api\/orders\/42, no client cert +\| \(nobody\) +\| refused at TLS handshake +\| TLS alert: certificate required$/m);
  expect(stdout).toMatch(/^ok +GET \/api\/orders\/7, forged XFCC sa\/admin +\| web +\| 200, forged XFCC removed +\| app saw URI=spiffe:\/\/…\/ns\/default\/sa\/web$/m);
  // Issue 16: a SPIFFE-aware program reads web's SVID from the Workload API of web's sidecar and does its own mTLS.
  expect(stdout).toMatch(/^ok +GET \/api\/orders\/9, SVID from Workload API +\| web, own mTLS +\| 200 allowed +\| rule web-reads-orders$/m);
  // Issue 15: the edge (web's ingress) for clients outside the mesh: CORS, an API key, the OpenAPI document, masking.
  expect(stdout).toMatch(/^ok +OPTIONS \/api\/orders\/5, CORS preflight +\| page of https:\/\/shop\.example +\| 204, origin allowed +\| answered at the edge$/m);
  expect(stdout).toMatch(/^ok +GET \/api\/orders\/5, API key, TLS +\| apikey:demo-client +\| 200 allowed +\| then mTLS: orders saw spiffe:\/\/…\/ns\/default\/sa\/web$/m);
  expect(stdout).toMatch(/^ok +POST \/api\/orders \{…, "isAdmin": true\} +\| apikey:demo-client +\| 400 rejected +\| \/isAdmin: not in the schema$/m);
  expect(stdout).toMatch(/^ok +GET \/api\/orders\/6, card number +\| apikey:demo-client +\| 200, card \*\*\*1111 +\| masked at the edge$/m);
  const rotation = /^ok +GET \/api\/orders\/N during renewal +\| web +\| (?:orders|web) (\w+)… -> (\w+)… +\| (\d+) requests, 0 failed$/m.exec(stdout);
  expect(rotation, stdout).not.toBeNull();
  expect(rotation![1]).not.toBe(rotation![2]);
  expect(Number(rotation![3])).toBeGreaterThan(0);
}

/**
 * Issue 14: as root (as CI runs) the demo shows transparent capture too, in network namespaces of its own that are
 * gone when it ends: web's app calls http://orders/... unchanged, and a plain call around the sidecar is refused.
 */
function expectCaptureShown(stdout: string): void {
  const step = /^\[7\/7\] transparent capture: .* done \(pods (mw-\w+-web) 10\.77\.0\.1, (mw-\w+-orders) 10\.77\.0\.2, /m.exec(stdout);
  expect(step, stdout).not.toBeNull();
  expect(stdout).toMatch(/^ok +GET http:\/\/orders\/api\/orders\/42 +\| web's app, unchanged +\| 200 through both sidecars +\| app saw URI=spiffe:\/\/…\/ns\/default\/sa\/web$/m);
  expect(stdout).toMatch(/^ok +GET http:\/\/10\.77\.0\.2\/api\/orders\/42, plain +\| \(no sidecar\) +\| refused: port 80 is the sidecar's +\| met orders's mTLS listener \(\w+\)$/m);
  for (const netns of [step![1]!, step![2]!]) expect(existsSync(`/run/netns/${netns}`), netns).toBe(false);
}

/** Printed once the sidecars have stopped: the audit log verified as `meshward audit verify` does. */
const AUDIT_INTACT = /^audit log: \d+ decisions, hash chain intact$/m;

describe('meshward demo (README: Start here)', () => {
  it('shows only commands that CI or these tests run', () => {
    // .ci/run is `npm ci` then `npm test`; the demo commands are run below.
    const ci = readFileSync(join(REPO_ROOT, '.ci/run'), 'utf8');
    const commands = startHereCommands();
    expect(commands[0]).toBe('npm ci');
    expect(commands[1]).toBe('npx meshward demo');
    for (const command of commands) {
      if (command.startsWith('npm ')) expect(ci).toMatch(new RegExp(`^${command}$`, 'm'));
      else expect(['npx meshward demo', 'npx meshward demo --keep']).toContain(command);
    }
  });

  it('prints its usage with --help', async () => {
    const r = await runCli(['demo', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: meshward demo \[--keep\] \[--verbose\]/);
  });

  it.concurrent('`npx meshward demo`: every check passes, exit 0, its directory removed', { timeout: 90_000 }, async () => {
    // A fresh npm cache, so npx installs the checkout as on a new machine: npm then runs `prepare`, which must not
    // rebuild dist/ under the other tests' meshward processes (scripts/prepare.mjs).
    const npmCache = mkdtempSync(join(tmpdir(), 'meshward-npx-cache-'));
    const bundleBefore = statSync(join(REPO_ROOT, 'dist/bundle'));
    const { stdout, stderr } = await run('npx meshward demo', { cwd: REPO_ROOT, timeout: 85_000, env: { ...process.env, npm_config_cache: npmCache } }).finally(() =>
      rmSync(npmCache, { recursive: true, force: true }),
    );
    const bundleAfter = statSync(join(REPO_ROOT, 'dist/bundle'));
    expect([bundleAfter.ino, bundleAfter.mtimeMs]).toEqual([bundleBefore.ino, bundleBefore.mtimeMs]);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/^\[1\/7\] creating a CA for spiffe:\/\/demo\.meshward\.local \.\.\. done/m);
    expect(stdout).toMatch(/^\[6\/7\] waiting for an SVID renewal under traffic .* done \(/m);
    expectChecksPassed(stdout);
    expectCaptureShown(stdout);
    expect(stdout).toMatch(AUDIT_INTACT);
    const dir = announcedDir(stdout);
    expect(stdout).toContain(`stopped everything and removed ${dir}`);
    expect(existsSync(dir)).toBe(false);
  });

  it.concurrent('without root: one line says capture was left out, every other check passes, exit 0', { timeout: 90_000 }, async () => {
    const { stdout, stderr } = await run(`setpriv --reuid=65534 --regid=65534 --clear-groups -- ${process.execPath} bin/meshward.js demo`, { cwd: REPO_ROOT, timeout: 85_000 });
    expect(stderr).toBe('');
    expect(stdout.match(/capture/g)).toEqual(['capture']);
    expect(stdout).toMatch(/^transparent capture left out: not running as root \(it needs network namespaces and iptables; sudo npx meshward demo shows it\)$/m);
    expect(stdout).toMatch(/^\[6\/6\] waiting for an SVID renewal under traffic .* done \(/m);
    expectChecksPassed(stdout);
    expect(existsSync(announcedDir(stdout))).toBe(false);
  });

  it.concurrent('`meshward demo --keep`: its curl command works, Ctrl-C stops it with exit 0 and removes its directory', { timeout: 90_000 }, async () => {
    const { child, output, match } = await startCli(['demo', '--keep'], /^ {2}(curl -i -H 'Host: orders' http:\/\/127\.0\.0\.1:\d+\/api\/orders\/1)$/m, { timeoutMs: 80_000 });
    try {
      expectChecksPassed(output());
      const dir = announcedDir(output());
      const curl = await run(match[1]!, { timeout: 10_000 });
      expect(curl.stdout).toMatch(/^HTTP\/1\.1 200 /);
      expect(curl.stdout).toContain('"order":"1"');
      // The edge, as a client outside the mesh calls it: TLS, the API key the hints print, a masked card number.
      const edgeCurl = /^ {2}(curl -i --cacert \S+ -H 'x-api-key: mw_[\w-]+' https:\/\/localhost:\d+\/api\/orders\/1)$/m.exec(output());
      expect(edgeCurl, output()).not.toBeNull();
      const edge = await run(edgeCurl![1]!, { timeout: 10_000 });
      // (curl and the edge agree on HTTP/2 by ALPN.)
      expect(edge.stdout).toMatch(/^HTTP\/2 200 /);
      expect(edge.stdout).toContain('"card":"***1111"');
      const readyz = /http:\/\/127\.0\.0\.1:\d+\/readyz/.exec(output())![0];
      expect((await fetch(readyz)).status).toBe(200);

      expect(await stopChild(child, 'SIGINT')).toBe(0);
      expect(output()).toMatch(AUDIT_INTACT);
      expect(output()).toContain(`stopped everything and removed ${dir}`);
      expect(existsSync(dir)).toBe(false);
    } finally {
      await stopChild(child, 'SIGTERM');
    }
  });
});
