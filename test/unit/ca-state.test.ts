import { describe, expect, it } from 'vitest';
import { advance, bundleRoots, startRotation, type CaState } from '../../src/ca/ca-state.js';
import { svidValidity } from '../../src/ca/svid-profile.js';

const base: CaState = { version: 1, trustDomain: 'example.org', maxSvidTtlSeconds: 3600, defaultSvidTtlSeconds: 600, rootTtlDays: 365, imported: false };
const t0 = new Date('2026-01-01T00:00:00Z');
const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);

describe('root rotation state machine', () => {
  it('publishes, then activates, then retires the old root', () => {
    const started = startRotation(base, t0, 600);
    expect(bundleRoots(started, 'OLD', 'NEW')).toEqual(['OLD', 'NEW']);
    expect(advance(started, at(599), 'OLD').kind).toBe('none');

    const activated = advance(started, at(600), 'OLD');
    expect(activated.kind).toBe('activate');
    if (activated.kind !== 'activate') return;
    const rotation = activated.state.rotation!;
    expect(rotation.stage).toBe('activated');
    // After promotion the new root is current and the old one is still trusted.
    expect(bundleRoots(activated.state, 'NEW', undefined)).toEqual(['NEW', 'OLD']);
    // The old root stays until every SVID it signed has expired: max TTL plus the skew margin.
    if (rotation.stage !== 'activated') return;
    expect(Date.parse(rotation.retireAt)).toBe(at(600 + 3600 + 60).getTime());

    expect(advance(activated.state, at(600 + 3600 + 59), 'NEW').kind).toBe('none');
    const retired = advance(activated.state, at(600 + 3600 + 60), 'NEW');
    expect(retired.kind).toBe('retire');
    if (retired.kind === 'retire') expect(bundleRoots(retired.state, 'NEW', undefined)).toEqual(['NEW']);
  });

  it('keeps an imported CA on its imported anchors', () => {
    expect(bundleRoots({ ...base, imported: true, importedAnchors: ['UP'] }, 'INTERMEDIATE', undefined)).toEqual(['UP']);
  });
});

describe('svidValidity', () => {
  const issuerNotAfter = new Date('2027-01-01T00:00:00Z');
  it('back-dates notBefore by at most 60 s and uses the requested TTL', () => {
    const v = svidValidity({ now: t0, requestedTtlSeconds: 600, maxTtlSeconds: 3600, defaultTtlSeconds: 300, issuerNotAfter });
    expect(t0.getTime() - v.notBefore.getTime()).toBeGreaterThan(0);
    expect(t0.getTime() - v.notBefore.getTime()).toBeLessThanOrEqual(60_000);
    expect(v.notAfter).toEqual(at(600));
    expect(v.notice).toBeUndefined();
  });
  it('clamps to the CA maximum and says so', () => {
    const v = svidValidity({ now: t0, requestedTtlSeconds: 48 * 3600, maxTtlSeconds: 3600, defaultTtlSeconds: 300, issuerNotAfter });
    expect(v.notAfter).toEqual(at(3600));
    expect(v.notice).toContain('exceeds the CA maximum 1h');
  });
  it('never outlives the issuer', () => {
    const v = svidValidity({ now: t0, requestedTtlSeconds: 3600, maxTtlSeconds: 3600, defaultTtlSeconds: 300, issuerNotAfter: at(100) });
    expect(v.notAfter).toEqual(at(100));
    expect(v.notice).toContain('ends when the CA certificate does');
  });
  it('uses the default TTL when none is asked for', () => {
    expect(svidValidity({ now: t0, maxTtlSeconds: 3600, defaultTtlSeconds: 300, issuerNotAfter }).notAfter).toEqual(at(300));
  });
  it('refuses to sign under an expired issuer', () => {
    expect(() => svidValidity({ now: t0, maxTtlSeconds: 3600, defaultTtlSeconds: 300, issuerNotAfter: at(-1) })).toThrow(/expired/);
  });
});
