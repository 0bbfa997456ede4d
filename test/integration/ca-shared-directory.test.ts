// Processes that share a CA directory see one record of used join tokens: `ca serve` beside the offline commands,
// across a restart, and two `ca serve` on one directory. All real child processes of the CLI.
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { makeCsr, mintJoinToken, readTokenMinting } from '../../src/ca/index.js';
import { auditRecords, initCaDir, serveCa, TD, type ServingCa } from '../helpers/ca.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { ecKey } from '../helpers/pki.js';

const WEB = `spiffe://${TD}/ns/default/sa/web`;

/** A join token for WEB, minted here (as `ca token` does) to spare a process per token. */
async function token(caDir: string): Promise<string> {
  const { trustDomain, secret } = await readTokenMinting(caDir);
  return mintJoinToken(secret, { trustDomain, spiffeId: WEB, ttlSeconds: 600 });
}

/** The outcome of one Sign with a join token: the serial issued, or the refusal's details. */
async function redeem(ca: ServingCa, joinToken: string): Promise<{ serial: string } | { refused: string }> {
  return ca
    .client()
    .sign({ csr: await makeCsr(ecKey()), joinToken })
    .then(
      (res) => ({ serial: res.serial }),
      (err: grpc.ServiceError) => ({ refused: `${grpc.status[err.code]}: ${err.details}` }),
    );
}

describe('a CA directory shared by several processes', () => {
  const running: ServingCa[] = [];
  const cleanups: (() => void)[] = [];
  afterEach(async () => {
    for (const ca of running.splice(0)) expect(await ca.stop()).toBe(0);
    for (const cleanup of cleanups.splice(0)) cleanup();
  });
  const setUp = async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    return initCaDir(dir);
  };
  // Signing on the main thread: worker threads have no part in what processes share, and cost each start.
  const serve = async (caDir: string) => {
    const ca = await serveCa(caDir, {}, ['--workers', '0']);
    running.push(ca);
    return ca;
  };

  it('keeps a token used, across a restart, after `ca issue` compacted the record under the running server', async () => {
    const caDir = await setUp();
    const ca = await serve(caDir);
    const usedFile = join(caDir, 'used-tokens.jsonl');
    // The record of a token that expired an hour ago: what any CA that has run a while holds, and what an opening
    // process compacts away.
    appendFileSync(usedFile, `${JSON.stringify({ jti: 'long-expired', exp: Math.floor(Date.now() / 1000) - 3600 })}\n`);
    const issued = await runCli(['ca', 'issue', '--dir', caDir, '--spiffe-id', `spiffe://${TD}/ops`, '--out', join(caDir, '..', 'ops')]);
    expect(issued.code, issued.stderr).toBe(0);
    expect(readFileSync(usedFile, 'utf8')).not.toContain('long-expired');

    const t = await token(caDir);
    expect(await redeem(ca, t)).toHaveProperty('serial');
    expect(await redeem(ca, t)).toEqual({ refused: expect.stringMatching(/^UNAUTHENTICATED: .*already used/) });
    await ca.stop();
    running.splice(running.indexOf(ca), 1);
    const restarted = await serve(caDir);
    expect(await redeem(restarted, t)).toEqual({ refused: expect.stringMatching(/^UNAUTHENTICATED: .*already used/) });
  });

  it('lets two `ca serve` on one directory redeem a token once, whether the uses race or follow each other', async () => {
    const caDir = await setUp();
    const [a, b] = await Promise.all([serve(caDir), serve(caDir)]);
    for (let round = 0; round < 5; round++) {
      const t = await token(caDir);
      const outcomes = await Promise.all([redeem(a, t), redeem(b, t)]);
      expect(outcomes.filter((o) => 'serial' in o), JSON.stringify(outcomes)).toHaveLength(1);
      expect(outcomes.find((o) => 'refused' in o)).toEqual({ refused: expect.stringMatching(/^UNAUTHENTICATED: .*already used/) });
    }
    const t = await token(caDir);
    expect(await redeem(a, t)).toHaveProperty('serial');
    expect(await redeem(b, t)).toEqual({ refused: expect.stringMatching(/^UNAUTHENTICATED: .*already used/) });
    // One shared audit log, and in it one issuance per token.
    const viaToken = auditRecords(join(caDir, 'audit.log')).filter((r) => r.method === 'token');
    expect(viaToken.filter((r) => r.decision === 'issued')).toHaveLength(6);
    expect(viaToken.filter((r) => r.decision === 'refused')).toHaveLength(6);
  });
});
