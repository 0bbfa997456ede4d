import { describe, expect, it } from 'vitest';
import { requestIdOf } from '../../src/telemetry/request-id.js';

const fresh = () => 'fresh-id';

describe('requestIdOf: a caller-supplied request id is kept only when it cannot be a credential', () => {
  it.each([
    '0b7c1f4e-8e0c-4a47-9d3f-2f0c2b8e7a11', // a UUID, what Envoy and meshward make
    '0B7C1F4E-8E0C-4A47-9D3F-2F0C2B8E7A11',
    'req-allow',
    'renew-web-1',
    'demo-allowed-1712345678901',
    '00f067aa0ba902b7', // a W3C span id
    'a.b_c-d',
  ])('keeps %j', (id) => expect(requestIdOf(id, fresh)).toEqual({ id, generated: false }));

  it.each([
    ['a JWT', 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'],
    ['a JWT of short parts', 'eyJhbGciOiJub25lIn0.e30.'],
    ['a bearer credential', 'Bearer abc'],
    ['32 hex digits (an API key as often as an id)', '9f86d081884c7d659a2feaa0c55ad015'],
    ['a prefixed API key', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'],
    ['a GitHub token', 'ghp_16C7e42F292c6912E7710c838347Ae178B4a'],
    ['base64', 'dXNlcjpwYXNz'.padEnd(20, '=')],
    ['user:password', 'user:hunter2'],
    ['a space', 'a b'],
    ['nothing', ''],
    ['65 characters', 'a-'.repeat(32) + 'a'],
  ])('replaces %s', (_what, id) => expect(requestIdOf(id, fresh)).toEqual({ id: 'fresh-id', generated: true }));

  it('replaces a repeated header and a missing one, with a UUID unless told otherwise', () => {
    expect(requestIdOf(['a', 'b'], fresh)).toEqual({ id: 'fresh-id', generated: true });
    expect(requestIdOf(undefined).id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
