import { randomUUID } from 'node:crypto';

const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's x-request-id when it is a sane token (so traces and audit records line up across hops), else a new one. */
export function requestIdOf(value: string | string[] | undefined): { id: string; generated: boolean } {
  if (typeof value === 'string' && SAFE_ID.test(value)) return { id: value, generated: false };
  return { id: randomUUID(), generated: true };
}
