import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';
import { DownstreamGone, DownstreamSignal } from '../../src/proxy/downstream-signal.js';

describe('DownstreamSignal', () => {
  it('calls each listener once, with the reason set, and none removed or added after the abort', () => {
    const signal = new DownstreamSignal();
    const calls: string[] = [];
    const removed = () => calls.push('removed');
    signal.once('abort', () => calls.push(`first ${signal.reason?.message}`));
    signal.on('abort', removed);
    signal.once('abort', () => calls.push('second'));
    signal.removeListener('abort', removed);
    const reason = new DownstreamGone();
    signal.abort(reason);
    signal.abort(new Error('later'));
    signal.once('abort', () => calls.push('too late'));
    expect(calls).toEqual([`first ${reason.message}`, 'second']);
    expect(signal).toMatchObject({ aborted: true, reason });
  });

  it('is a signal undici takes: aborting it cancels a request in flight with its reason, and the app sees the close', async () => {
    let appSawClose!: () => void;
    const closed = new Promise<void>((resolve) => (appSawClose = resolve));
    const app = http.createServer((req) => req.socket.once('close', appSawClose));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const pool = new Pool(`http://127.0.0.1:${(app.address() as AddressInfo).port}`);
    try {
      const signal = new DownstreamSignal();
      const answer = pool.request({ method: 'GET', path: '/never', signal });
      await new Promise((resolve) => app.once('request', resolve));
      const reason = new DownstreamGone();
      signal.abort(reason);
      await expect(answer).rejects.toBe(reason);
      await closed;
    } finally {
      await pool.destroy();
      await new Promise<void>((resolve) => app.close(() => resolve()));
    }
  });
});
