import { describe, expect, it } from 'vitest';
import { servingProblem, type ListenerLoad } from '../../src/proxy/serving-health.js';

const listener = (open: number, maxConnections = 100): ListenerLoad => ({ name: 'inbound', open: () => open, maxConnections });

describe('servingProblem (what /readyz calls "cannot serve")', () => {
  it('is nothing while connections and descriptors have room', () => {
    expect(servingProblem([listener(99)], { open: 100, limit: 1024 })).toBeUndefined();
    expect(servingProblem([listener(99)], undefined)).toBeUndefined();
  });

  it('names a listener at its connection cap', () => {
    expect(servingProblem([listener(10), { ...listener(100), name: 'outbound' }], undefined)).toBe('the outbound listener holds 100 connections, its limits.maxConnections');
  });

  it('keeps 5% of the descriptor limit (at least 32) in reserve', () => {
    expect(servingProblem([], { open: 973, limit: 1024 })).toBe('973 of 1024 file descriptors in use: new connections would fail');
    expect(servingProblem([], { open: 972, limit: 1024 })).toBeUndefined();
    expect(servingProblem([], { open: 225, limit: 256 })).toMatch(/file descriptors in use/);
    expect(servingProblem([], { open: 224, limit: 256 })).toBeUndefined();
    expect(servingProblem([], { open: 950_001, limit: 1_000_000 })).toMatch(/file descriptors in use/);
    expect(servingProblem([], { open: 949_999, limit: 1_000_000 })).toBeUndefined();
  });

  it('says so when descriptors could not even be counted for lack of one', () => {
    expect(servingProblem([], 'exhausted')).toBe('out of file descriptors (EMFILE)');
  });
});
