import { parentPort } from 'node:worker_threads';
import { CaError } from './ca-error.js';
import { issueLeaf } from './issue-leaf.js';
import type { PoolMessage, PoolResult } from './signing-pool.js';
import { SvidSigner } from './svid-signer.js';

// One thread of the signing pool: checks CSRs and signs leaves with the authority it was last sent. Messages on a
// port arrive in order, so a job always meets the authority that was current when the main thread sent it.

let signer: SvidSigner | undefined;
// Answers go back once per event-loop turn, in one message, for the same reason jobs come in batches.
let answers: PoolResult[] = [];

parentPort!.on('message', (message: PoolMessage) => {
  if (message.kind === 'authority') {
    // Buffers arrive as plain Uint8Arrays; the DER reader wants Buffers.
    const { certificate, chain, privateKey } = message.authority;
    signer = new SvidSigner({ certificate: Buffer.from(certificate), chain: chain.map((c) => Buffer.from(c)), privateKey });
    return;
  }
  const results = message.jobs.map(({ id, job }): PoolResult => {
    try {
      if (!signer) throw new Error('no signing authority was sent to this worker');
      const leaf = issueLeaf(signer, { ...job, notBefore: new Date(job.notBefore), notAfter: new Date(job.notAfter) });
      // Copied out of Buffer's shared pool slab, which posting would otherwise clone whole.
      return { id, der: new Uint8Array(leaf.der), serialHex: leaf.serialHex };
    } catch (err) {
      return err instanceof CaError ? { id, refusal: { code: err.code, message: err.message } } : { id, failure: err instanceof Error ? err.message : String(err) };
    }
  });
  if (answers.push(...results) === results.length) {
    setImmediate(() => {
      parentPort!.postMessage(answers);
      answers = [];
    });
  }
});
