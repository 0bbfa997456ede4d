import jsonpatch, { type Operation } from 'fast-json-patch';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { admit, injectSidecar, type AdmissionReviewReply, type JsonObject } from '../../src/kube/index.js';
import { FIXTURES, OPTIONS } from '../helpers/kube.js';
import { kubernetesSchemaErrors } from '../helpers/kube-schema.js';

type Review = { request: { uid: string; operation: string; namespace?: string; object: JsonObject & { spec: JsonObject; metadata: JsonObject } } };
const review = (): Review => JSON.parse(readFileSync(join(FIXTURES, 'admission-review-pod.json'), 'utf8')) as Review;

function answered(body: unknown): AdmissionReviewReply {
  const outcome = admit(body, OPTIONS);
  if (!outcome.ok) throw new Error(outcome.reason);
  return outcome.review;
}

const decodePatch = (patch: string) => JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as Operation[];

describe('admit', () => {
  it('answers a pod creation with a JSONPatch that yields what `meshward inject` yields', async () => {
    const body = review();
    const reply = answered(body);
    expect(reply).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: body.request.uid, allowed: true, patchType: 'JSONPatch' } });
    const pod = body.request.object;
    const patched = jsonpatch.applyPatch(structuredClone(pod), decodePatch(reply.response.patch!), true).newDocument;
    expect(patched).toEqual(injectSidecar(pod, { ...OPTIONS, namespace: 'shop' }).manifest);
    const { status: _status, ...withoutStatus } = patched as JsonObject;
    expect(await kubernetesSchemaErrors([{ label: 'patched pod', object: withoutStatus }])).toEqual([]);
  });

  it('takes the namespace from the request, as a controller-made pod may not carry one', () => {
    const body = review();
    delete body.request.object.metadata.namespace;
    const patched = jsonpatch.applyPatch(structuredClone(body.request.object), decodePatch(answered(body).response.patch!), true).newDocument;
    expect((patched.metadata.annotations as Record<string, string>)['meshward.io/sidecar-config']).toContain('spiffeId: spiffe://cluster.local/ns/shop/sa/web');
  });

  it('allows without a patch what needs no change: opted out, already injected, not a CREATE', () => {
    const optOut = review();
    optOut.request.object.metadata.annotations = { 'meshward.io/inject': 'false' };
    const injected = review();
    injected.request.object = injectSidecar(injected.request.object, OPTIONS).manifest as Review['request']['object'];
    const update = review();
    update.request.operation = 'UPDATE';
    for (const body of [optOut, injected, update]) {
      expect(answered(body).response).toEqual({ uid: body.request.uid, allowed: true });
    }
  });

  it('refuses, with the reason, a pod that cannot get its sidecar', () => {
    const body = review();
    body.request.object.spec.hostNetwork = true;
    expect(answered(body).response).toEqual({
      uid: body.request.uid,
      allowed: false,
      status: { code: 422, message: expect.stringMatching(/^meshward cannot inject its sidecar: spec\.hostNetwork: a hostNetwork pod/) },
    });
  });

  it('names what is wrong with a malformed review', () => {
    const reason = (body: unknown) => {
      const outcome = admit(body, OPTIONS);
      return outcome.ok ? 'accepted' : outcome.reason;
    };
    expect(reason(null)).toMatch(/^not an admission\.k8s\.io\/v1 AdmissionReview: /);
    expect(reason({ ...review(), apiVersion: 'admission.k8s.io/v1beta1' })).toBe('not an admission.k8s.io/v1 AdmissionReview: apiVersion: must be "admission.k8s.io/v1"');
    const noUid = review() as unknown as { request: Record<string, unknown> };
    delete noUid.request.uid;
    expect(reason(noUid)).toBe('not an admission.k8s.io/v1 AdmissionReview: request.uid: must be a string');
    expect(reason({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' })).toMatch(/^not an admission\.k8s\.io\/v1 AdmissionReview: request: /);
  });
});
