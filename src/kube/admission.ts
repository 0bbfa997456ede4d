import jsonpatch from 'fast-json-patch';
import { z } from 'zod';
import { formatPath } from '../config/errors.js';
import { injectSidecar, type InjectOptions } from './inject.js';
import { ManifestError, type JsonObject } from './manifest.js';

// The admission webhook's decision, as a pure function from an AdmissionReview (admission.k8s.io/v1) to the
// review to answer with. The patch is the RFC 6902 difference between the object as received and the object
// `meshward inject` would print, so the webhook and the CLI can never disagree.

const reviewSchema = z.looseObject({
  apiVersion: z.literal('admission.k8s.io/v1', { error: 'must be "admission.k8s.io/v1"' }),
  kind: z.literal('AdmissionReview', { error: 'must be "AdmissionReview"' }),
  request: z.looseObject({
    uid: z.string({ error: 'must be a string' }).min(1, 'must not be empty'),
    kind: z.looseObject({ group: z.string(), version: z.string(), kind: z.string() }),
    operation: z.string({ error: 'must be a string' }),
    namespace: z.string().optional(),
    object: z.record(z.string(), z.unknown()).nullable().optional(),
  }),
});

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** Base64 of the JSON Patch document. */
  patch?: string;
  status?: { code: number; message: string };
}

export interface AdmissionReviewReply {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export type AdmissionOutcome =
  | { ok: true; review: AdmissionReviewReply; summary: { uid: string; namespace: string | undefined; kind: string; result: 'patched' | 'unchanged' | 'refused' } }
  | { ok: false; reason: string };

/** `options` without a namespace: the request's namespace is the one the pod lands in. */
export function admit(body: unknown, options: Omit<InjectOptions, 'namespace'>): AdmissionOutcome {
  const parsed = reviewSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = formatPath(issue.path);
    return { ok: false, reason: `not an admission.k8s.io/v1 AdmissionReview: ${where === '' ? '' : `${where}: `}${issue.message}` };
  }
  const { uid, kind, operation, namespace, object } = parsed.data.request;
  const reply = (response: Omit<AdmissionResponse, 'uid'>, result: 'patched' | 'unchanged' | 'refused'): AdmissionOutcome => ({
    ok: true,
    review: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, ...response } },
    summary: { uid, namespace, kind: kind.kind, result },
  });
  // A pod's spec cannot change after creation, so only CREATE is ever mutated.
  if (operation !== 'CREATE' || !object) return reply({ allowed: true }, 'unchanged');

  // The object normally carries apiVersion and kind; where it does not, the request's kind says what it is.
  const received: JsonObject = { apiVersion: kind.group === '' ? kind.version : `${kind.group}/${kind.version}`, kind: kind.kind, ...object };
  try {
    const { changed, manifest } = injectSidecar(received, { ...options, ...(namespace ? { namespace } : {}) });
    if (!changed) return reply({ allowed: true }, 'unchanged');
    const patch = jsonpatch.compare(received, manifest);
    return reply({ allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }, 'patched');
  } catch (err) {
    // Fail closed: a pod meant for the mesh that cannot get its sidecar is refused with the reason, not let in bare.
    if (!(err instanceof ManifestError)) throw err;
    return reply({ allowed: false, status: { code: 422, message: `meshward cannot inject its sidecar: ${err.message}` } }, 'refused');
  }
}
