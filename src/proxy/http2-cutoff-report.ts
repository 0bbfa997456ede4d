import type { HopDirection, Logger, SidecarMetrics } from '../telemetry/index.js';
import type { GuardEvents } from './http2-session-guard.js';

/** One warning and one count per peer cut off; a count (and a debug line) per connection closed. */
export function reportCutOffs(direction: HopDirection, logger: Logger, metrics: Pick<SidecarMetrics, 'recordHttp2PeerCutOff' | 'recordHttp2ConnectionCut'>): GuardEvents {
  return {
    peerCutOff({ peer, maxResets, cooldownMs }) {
      metrics.recordHttp2PeerCutOff(direction);
      logger.warn(
        { direction, peer, maxResetsPer10s: maxResets, cooldownMs },
        'HTTP/2 peer cut off: too many stream resets (rapid reset?); its connections got GOAWAY and new ones are refused for the cool-down',
      );
    },
    connectionCutOff({ peer, reason }) {
      metrics.recordHttp2ConnectionCut(direction, reason);
      logger.debug({ direction, peer, reason }, 'HTTP/2 connection closed with GOAWAY');
    },
  };
}
