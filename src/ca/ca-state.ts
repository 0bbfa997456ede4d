import { z } from 'zod';

// The CA's persisted state and the root-rotation state machine. Pure: `advance` says what is due at `now`;
// the directory (ca-directory.ts) persists the result and moves the files.
//
// Rotation, stage by stage:
//   (none) --rotate--> propagating: the next root exists and is in the bundle; the old root still signs.
//   propagating --activateAt--> activated: the next root signs; the old root stays in the bundle.
//   activated --retireAt--> (none): every SVID signed by the old root has expired; it leaves the bundle.
// retireAt = activation + the maximum SVID TTL + a clock-skew margin, so no SVID can outlive its root's
// place in the bundle.

const isoDate = z.string().datetime();

export const rotationSchema = z.discriminatedUnion('stage', [
  z.object({ stage: z.literal('propagating'), startedAt: isoDate, activateAt: isoDate }),
  z.object({ stage: z.literal('activated'), activatedAt: isoDate, retireAt: isoDate, retiringRoots: z.array(z.string()).min(1) }),
]);

export const caStateSchema = z.object({
  version: z.literal(1),
  trustDomain: z.string(),
  maxSvidTtlSeconds: z.number().positive(),
  defaultSvidTtlSeconds: z.number().positive(),
  rootTtlDays: z.number().positive(),
  /** An imported CA signs with an upstream-issued certificate; its trust anchors come from the import. */
  imported: z.boolean(),
  importedAnchors: z.array(z.string()).optional(),
  rotation: rotationSchema.optional(),
});

export type CaState = z.infer<typeof caStateSchema>;
export type Rotation = z.infer<typeof rotationSchema>;

// Peers whose clocks run slow may accept an old-root SVID a little past its notAfter: keep the old root that much
// longer (capped by the TTL itself, so short-lived test CAs rotate quickly).
export const RETIRE_MARGIN_SECONDS = 60;

export type Transition = { kind: 'none' } | { kind: 'activate'; state: CaState } | { kind: 'retire'; state: CaState };

/** What is due at `now`. `currentRootPem` is the root that signs until activation. */
export function advance(state: CaState, now: Date, currentRootPem: string): Transition {
  const rotation = state.rotation;
  if (!rotation) return { kind: 'none' };
  if (rotation.stage === 'propagating' && now.getTime() >= Date.parse(rotation.activateAt)) {
    const margin = Math.min(RETIRE_MARGIN_SECONDS, state.maxSvidTtlSeconds);
    const retireAt = new Date(now.getTime() + (state.maxSvidTtlSeconds + margin) * 1000);
    return {
      kind: 'activate',
      state: { ...state, rotation: { stage: 'activated', activatedAt: now.toISOString(), retireAt: retireAt.toISOString(), retiringRoots: [currentRootPem] } },
    };
  }
  if (rotation.stage === 'activated' && now.getTime() >= Date.parse(rotation.retireAt)) {
    const { rotation: _done, ...rest } = state;
    return { kind: 'retire', state: rest };
  }
  return { kind: 'none' };
}

export function startRotation(state: CaState, now: Date, propagationDelaySeconds: number): CaState {
  return {
    ...state,
    rotation: { stage: 'propagating', startedAt: now.toISOString(), activateAt: new Date(now.getTime() + propagationDelaySeconds * 1000).toISOString() },
  };
}

/** The trust bundle for a state: every root a valid SVID may chain to, now or soon. */
export function bundleRoots(state: CaState, currentRootPem: string, nextRootPem: string | undefined): string[] {
  if (state.imported) return state.importedAnchors ?? [];
  const roots = [currentRootPem];
  if (state.rotation?.stage === 'propagating' && nextRootPem) roots.push(nextRootPem);
  if (state.rotation?.stage === 'activated') roots.push(...state.rotation.retiringRoots);
  return roots;
}
