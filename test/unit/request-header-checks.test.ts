import { describe, expect, it } from 'vitest';
import { checkAuthority } from '../../src/authz/index.js';
import { requestAuthority, underscoreHeaderNames } from '../../src/filters/index.js';
import { repeatedSingleValuedField } from '../../src/filters/request-header-checks.js';
import { forwardedRequestHeaders } from '../../src/proxy/hop-headers.js';

describe('checkAuthority', () => {
  it.each(['orders', 'orders:8080', 'ORDERS.example.org.', '10.0.0.1:443', '[::1]', '[2001:db8::1]:65535', 'a_b-c~d'])('accepts %s', (value) => {
    expect(checkAuthority(value)).toEqual({ ok: true, value });
  });

  it.each([
    ['orders:1@admin.internal', 'is not HOST[:PORT]'],
    ['user@orders', 'is not HOST[:PORT]'],
    ['orders:abc/../x', 'is not HOST[:PORT]'],
    ['orders%2eadmin', 'is not HOST[:PORT]'],
    ['orders;x', 'is not HOST[:PORT]'],
    ['orders:', 'is not HOST[:PORT]'],
    ['orders:0', 'port out of range'],
    ['orders:65536', 'port out of range'],
    ['::1', 'is not HOST[:PORT]'],
    ['[1:2:3]', 'no valid IPv6 address'],
    ['', 'is not HOST[:PORT]'],
    [`${'a'.repeat(254)}`, 'is not HOST[:PORT]'],
  ])('refuses %s', (value, reason) => {
    const checked = checkAuthority(value);
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.error).toContain(reason);
  });
});

describe('requestAuthority', () => {
  it('takes :authority over HTTP/2 and Host over HTTP/1.1', () => {
    expect(requestAuthority({ ':authority': 'orders:80' }, [])).toEqual({ ok: true, value: 'orders:80' });
    expect(requestAuthority({ host: 'orders' }, ['Host', 'orders'])).toEqual({ ok: true, value: 'orders' });
  });

  it('refuses two Host headers, Host and :authority that differ, and no host at all', () => {
    expect(requestAuthority({ host: 'orders' }, ['Host', 'orders', 'host', 'admin'])).toMatchObject({ ok: false, reason: expect.stringContaining('more than one Host') });
    expect(requestAuthority({ ':authority': 'orders', host: 'admin' }, ['host', 'admin'])).toMatchObject({ ok: false, reason: expect.stringContaining(':authority and another in Host') });
    expect(requestAuthority({ ':authority': 'orders', host: 'ORDERS' }, ['host', 'ORDERS'])).toEqual({ ok: true, value: 'orders' });
    expect(requestAuthority({}, [])).toMatchObject({ ok: false, reason: 'the request has no Host' });
  });
});

describe('header names with underscores', () => {
  it('lists them in lower case, and makes no array when there are none', () => {
    expect(underscoreHeaderNames(['Host', 'orders', 'X_User', 'a'])).toEqual(['x_user']);
    expect(underscoreHeaderNames(['Host', 'orders'])).toBeUndefined();
  });

  it("never forwards an underscore spelling of a header meshward sets, even where underscores are allowed", () => {
    const raw = ['x_forwarded_client_cert', 'URI=x', 'X_MESHWARD_PRINCIPAL', 'p', 'x-meshward_principal', 'p', 'x_request_id', 'r', 'Trace_Parent', 't', 'traceparent_', 't', 'x_user', 'u', 'x-request-id', 'kept'];
    expect(forwardedRequestHeaders(raw, { keepTeTrailers: false, stripIdentity: true })).toEqual(['Trace_Parent', 't', 'traceparent_', 't', 'x_user', 'u', 'x-request-id', 'kept']);
  });
});

describe('repeatedSingleValuedField', () => {
  it('names a single-valued field a filter judges that comes twice, in any case; others may repeat', () => {
    expect(repeatedSingleValuedField(['Authorization', 'Bearer a', 'authorization', 'Bearer b'])).toBe('authorization');
    expect(repeatedSingleValuedField(['Content-Type', 'text/plain', 'Accept', '*/*', 'CONTENT-TYPE', 'application/json'])).toBe('content-type');
    expect(repeatedSingleValuedField(['proxy-authorization', 'a', 'Proxy-Authorization', 'b'])).toBe('proxy-authorization');
    expect(repeatedSingleValuedField(['Authorization', 'Bearer a', 'Content-Type', 'text/plain', 'Accept', 'a', 'accept', 'b', 'x-forwarded-for', '1.2.3.4', 'X-Forwarded-For', '5.6.7.8'])).toBeUndefined();
  });
});
