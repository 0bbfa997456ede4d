import type { Pool } from 'undici';
import { send } from './requests.js';
import type { Row } from './rows.js';

// A live renewal under traffic: web's app keeps calling orders while the sidecars' short-lived SVIDs come up for
// renewal (half-life ±10%). The row shows whose serial changed, from what to what, and how many requests failed
// meanwhile: the promise is none, because new handshakes use the new SVID and open connections finish with theirs.

const WORKERS = 4;
/** Traffic goes on this long after the new serial shows, so requests run on the new SVID too. */
const AFTER_MS = 500;
/** Each worker's pause between requests: steady traffic (a few hundred requests a second), not a load test. */
const PAUSE_MS = 10;

export interface RotationWatch {
  web: Pool;
  /** name → admin address (/certs shows the serial). */
  admins: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
}

async function serial(admin: string): Promise<string> {
  const res = await fetch(`http://${admin}/certs`);
  return ((await res.json()) as { serial: string }).serial;
}

export async function rotationUnderTraffic(watch: RotationWatch): Promise<Row> {
  const names = Object.keys(watch.admins);
  const before = new Map(await Promise.all(names.map(async (n) => [n, await serial(watch.admins[n]!)] as const)));
  let running = true;
  let sent = 0;
  const failures: string[] = [];
  const worker = async (w: number) => {
    for (let i = 0; running && !watch.signal.aborted; i++) {
      sent += 1;
      try {
        const res = await send(watch.web, `/api/orders/${w * 100_000 + i}`);
        if (res.status !== 200) failures.push(`${res.status} ${res.body}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, PAUSE_MS));
    }
  };
  const traffic = Array.from({ length: WORKERS }, (_, w) => worker(w));

  let rotated: { name: string; from: string; to: string } | undefined;
  try {
    const deadline = Date.now() + watch.timeoutMs;
    while (!rotated && Date.now() < deadline && !watch.signal.aborted) {
      await new Promise((r) => setTimeout(r, 100));
      for (const name of names) {
        const now = await serial(watch.admins[name]!);
        if (now !== before.get(name)) rotated = { name, from: before.get(name)!, to: now };
      }
    }
    if (rotated) await new Promise((r) => setTimeout(r, AFTER_MS));
  } finally {
    running = false;
    await Promise.all(traffic);
  }

  const counts = `${sent} requests, ${failures.length} failed`;
  if (!rotated) {
    return { request: 'GET /api/orders/N during renewal', as: 'web', result: 'no renewal', why: counts, ok: false, expected: `a new serial within ${watch.timeoutMs / 1000} s` };
  }
  return {
    request: 'GET /api/orders/N during renewal',
    as: 'web',
    result: `${rotated.name} ${short(rotated.from)} -> ${short(rotated.to)}`,
    why: counts,
    ok: failures.length === 0,
    expected: `0 failed (first failure: ${failures[0] ?? ''})`,
  };
}

function short(serial: string): string {
  return serial.length > 10 ? `${serial.slice(0, 10)}…` : serial;
}
