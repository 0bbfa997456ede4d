import { createHash } from 'node:crypto';
import type { IdentitySnapshot } from '../identity/index.js';

export type IdentityFollower = (snapshot: IdentitySnapshot, version: string) => void;

/**
 * The sidecar's current identity, for the streams that serve it to other processes. Each change is passed on once:
 * a snapshot with the same certificates and bundle as the current one (a file rewritten unchanged) is no change.
 */
export class IdentityFeed {
  private latest: { snapshot: IdentitySnapshot; version: string } | undefined;
  private readonly followers = new Set<IdentityFollower>();

  /** The identity now, and its version. */
  get current(): { snapshot: IdentitySnapshot; version: string } | undefined {
    return this.latest;
  }

  publish(snapshot: IdentitySnapshot): void {
    const version = identityVersion(snapshot);
    if (version === this.latest?.version) return;
    this.latest = { snapshot, version };
    for (const follower of this.followers) follower(snapshot, version);
  }

  /** Calls `follower` with the current identity (once there is one) and every change after; returns a function that stops. */
  follow(follower: IdentityFollower): () => void {
    this.followers.add(follower);
    if (this.latest) follower(this.latest.snapshot, this.latest.version);
    return () => this.followers.delete(follower);
  }
}

/**
 * Names the content of an identity (SDS's version_info): it changes with every renewal and bundle change, and only
 * then, and is the same on every stream and across restarts of a sidecar that holds the same SVID.
 */
export function identityVersion(snapshot: IdentitySnapshot): string {
  return createHash('sha256').update(snapshot.svid.certChainPem).update('\0').update(snapshot.bundlePem).digest('hex').slice(0, 16);
}
