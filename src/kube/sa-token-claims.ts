import type { JWTPayload } from 'jose';
import { parseSpiffeId } from '../spiffe/id.js';
import { isObject } from './manifest.js';

// What a verified Kubernetes service-account token says about its holder, as a SPIFFE ID. Pure: the signature,
// issuer, audience and expiry are checked before this (sa-token-attestor.ts); this reads the `kubernetes.io`
// claims the API server puts in every bound token and refuses anything inconsistent.

export interface WorkloadIdentity {
  spiffeId: string;
  namespace: string;
  serviceAccount: { name: string; uid?: string };
  /** Present when the token is bound to a pod (every projected token is). */
  pod?: { name: string; uid: string };
  expiresAt: Date;
}

export type ClaimsResult = { ok: true; identity: WorkloadIdentity } | { ok: false; reason: string };

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v !== '';

export function identityFromClaims(payload: JWTPayload, trustDomain: string, requirePodBinding = false): ClaimsResult {
  const refuse = (reason: string): ClaimsResult => ({ ok: false, reason });
  const k8s = payload['kubernetes.io'];
  if (!isObject(k8s)) return refuse('the token has no "kubernetes.io" claim: it is not a bound service-account token (a projected volume or the TokenRequest API makes one)');
  const { namespace, serviceaccount: account, pod } = k8s;
  if (!nonEmpty(namespace)) return refuse('the token\'s "kubernetes.io".namespace claim is missing');
  if (!isObject(account) || !nonEmpty(account.name)) return refuse('the token\'s "kubernetes.io".serviceaccount.name claim is missing');
  // The API server sets both; a token where they disagree was not made by it.
  const subject = `system:serviceaccount:${namespace}:${account.name}`;
  if (payload.sub !== subject) return refuse(`the token's subject ${JSON.stringify(payload.sub)} does not match its kubernetes.io claims (${subject})`);

  let boundPod: WorkloadIdentity['pod'];
  if (pod !== undefined) {
    if (!isObject(pod) || !nonEmpty(pod.name) || !nonEmpty(pod.uid)) return refuse('the token\'s "kubernetes.io".pod claim must have a name and a uid');
    boundPod = { name: pod.name, uid: pod.uid };
  } else if (requirePodBinding) {
    return refuse('the token is not bound to a pod; only a projected service-account token is accepted');
  }

  const id = parseSpiffeId(`spiffe://${trustDomain}/ns/${namespace}/sa/${account.name}`);
  if (!id.ok) return refuse(id.error);
  return {
    ok: true,
    identity: {
      spiffeId: id.value.uri,
      namespace,
      serviceAccount: { name: account.name, ...(nonEmpty(account.uid) ? { uid: account.uid } : {}) },
      ...(boundPod ? { pod: boundPod } : {}),
      expiresAt: new Date(payload.exp! * 1000),
    },
  };
}
