import { describe, expect, it } from 'vitest';
import { hostOf, portOf } from '../../src/proxy/authority.js';
import { routeFor } from '../../src/proxy/outbound-routes.js';

// Outbound routes by host and port (issue 14): a service with several ports has a listener per port at the
// destination, so a route may name the port it is for; a route without a port takes the host's other calls.

describe('outbound route choice', () => {
  it('reads the port the app called from Host / :authority, 80 when it names none', () => {
    expect(['orders', 'orders:9090', 'Orders.:8080', '[fd00::1]', '[fd00::1]:9090', '10.0.0.1:81'].map((a) => [hostOf(a), portOf(a)])).toEqual([
      ['orders', 80],
      ['orders', 9090],
      ['orders', 8080],
      ['[fd00::1]', 80],
      ['[fd00::1]', 9090],
      ['10.0.0.1', 81],
    ]);
  });

  it('takes the route for the host and port first, then the one for the host alone, else none', () => {
    const table = new Map([
      ['orders:9090', 'grpc'],
      ['orders', 'http'],
      ['payments:8443', 'payments'],
      ['[fd00::1]:9090', 'v6'],
    ]);
    expect(routeFor(table, 'orders', 9090)).toBe('grpc');
    expect(routeFor(table, 'orders', 8080)).toBe('http');
    expect(routeFor(table, 'orders', 80)).toBe('http');
    expect(routeFor(table, 'payments', 8443)).toBe('payments');
    // A route with a port is for that port alone.
    expect(routeFor(table, 'payments', 80)).toBeUndefined();
    expect(routeFor(table, '[fd00::1]', 9090)).toBe('v6');
    expect(routeFor(table, 'ledger', 80)).toBeUndefined();
  });
});
