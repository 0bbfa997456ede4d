import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { parseSvidId } from '../spiffe/id.js';
import { derToPem } from '../spiffe/x509-svid.js';
import { CA_FILES, loadCa, withCaLock, type CaMaterial } from './ca-directory.js';
import { CaError } from './ca-error.js';
import type { CaState } from './ca-state.js';
import { JoinTokens } from './join-tokens.js';
import { SharedAuditLog } from './shared-audit-log.js';
import { auditRecordOf, operatorPrincipal, type AuditMethod, type SignAttempt, type SignOutcome } from './sign-outcome.js';
import { InlineSigning, SigningPool, type LeafSigning } from './signing-pool.js';
import { svidValidity } from './svid-profile.js';
import { SvidSigner, type SigningAuthority } from './svid-signer.js';

// Who may get what, independent of transport. The gRPC service and the offline CLI both come through here, so
// every SVID is checked, signed and recorded the same way. Every outcome, issued or refused, is appended to the
// audit log before the caller hears of it; an issuance that cannot be recorded is refused (fail closed).

/** How the caller proved who it is. */
export type Caller =
  | { method: 'join-token'; token: string }
  /** A platform credential (a Kubernetes projected service-account token) that a WorkloadAttestor vouches for. */
  | { method: 'workload-token'; token: string }
  /** A caller that presented its current SVID over mTLS, already verified against the trust bundle. */
  | { method: 'svid'; spiffeId: string }
  /** A client certificate that chained to the bundle but is not a usable SVID (`reason` says why). */
  | { method: 'unusable-svid'; reason: string }
  /** Someone with access to the CA directory and key, on this machine (the `ca issue` / `ca sign` commands). */
  | { method: 'operator' }
  /** The serving CA itself, for its own serving certificate. */
  | { method: 'self'; spiffeId: string }
  | { method: 'none' };

/** Where a request came from, for the audit record: ids that tie it to the caller's logs and traces. */
export interface SignContext {
  requestId?: string;
  traceId?: string;
}

export interface SvidRequest {
  /** PKCS#10, PEM or DER. */
  csr: Buffer | string;
  ttlSeconds?: number;
  /** The ID asked for; must be the one the caller is entitled to. Required for operators. */
  spiffeId?: string;
  /** DNS SANs: operators only, so a workload can never claim a hostname. */
  dnsNames?: string[];
}

export interface IssuedSvid {
  spiffeId: string;
  /** Leaf first, then any intermediates. */
  chain: Buffer[];
  chainPem: string;
  bundle: string[];
  serial: string;
  notAfter: Date;
  /** Set when the SVID is shorter than asked for, saying why. */
  notice?: string;
}

/**
 * Turns a platform credential into the SPIFFE ID it proves (src/kube's SaTokenAttestor on Kubernetes). Unlike a
 * join token it is not used up: the platform rotates it, and each one only ever proves its own workload.
 */
export interface WorkloadAttestor {
  attest(token: string): Promise<{ ok: true; spiffeId: string } | { ok: false; code: 'unauthenticated' | 'unavailable'; reason: string }>;
}

const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export interface AuthorityOptions {
  passphrase?: string;
  logger?: Logger;
  attestor?: WorkloadAttestor;
  /** Threads that check CSRs and sign (signing-pool.ts); 0, the default, signs on the calling thread. */
  signingWorkers?: number;
  /** The audit log (default DIR/audit.log). */
  auditPath?: string;
  /** Hears every outcome once it is recorded (metrics). */
  onOutcome?: (outcome: SignOutcome) => void;
}

const AUDIT_METHOD: Record<Caller['method'], AuditMethod> = {
  'join-token': 'token',
  'workload-token': 'attested',
  svid: 'renewal',
  'unusable-svid': 'renewal',
  operator: 'offline',
  self: 'self',
  none: 'none',
};

/** The certificate that signs, and when it expires (no SVID may outlive it). */
interface Issuer {
  authority: SigningAuthority;
  notAfter: Date;
}

export class Authority {
  private issuer: Issuer;

  private constructor(
    private material: CaMaterial,
    private readonly tokens: JoinTokens,
    private readonly audit: SharedAuditLog,
    private readonly signing: LeafSigning,
    private readonly opts: AuthorityOptions,
  ) {
    this.issuer = this.useMaterial(material);
  }

  static async open(dir: string, opts: AuthorityOptions = {}): Promise<Authority> {
    const material = await loadCa(dir, opts.passphrase);
    const tokens = await JoinTokens.open(material.tokenSecret, material.state.trustDomain, join(dir, CA_FILES.usedTokens), (fn) => withCaLock(dir, fn));
    const workers = opts.signingWorkers ?? 0;
    const audit = await SharedAuditLog.open(opts.auditPath ?? join(dir, CA_FILES.audit)).catch(async (err: Error) => {
      await tokens.close();
      throw new Error(`cannot open the audit log: ${err.message}`);
    });
    const signing = workers > 0 ? new SigningPool(workers, (err) => opts.logger?.error({ err }, 'a signing worker died; replaced it')) : new InlineSigning();
    return new Authority(material, tokens, audit, signing, opts);
  }

  private get logger(): Logger | undefined {
    return this.opts.logger;
  }

  /** Whether platform credentials (workload tokens) are accepted besides join tokens. */
  get attestsWorkloads(): boolean {
    return this.opts.attestor !== undefined;
  }

  get auditPath(): string {
    return this.audit.path;
  }

  /** The persisted state: trust domain, TTLs, the rotation stage. */
  get state(): CaState {
    return this.material.state;
  }

  /** When the signing certificate expires: no SVID outlives it, and after it the CA cannot issue. */
  get signingNotAfter(): Date {
    return this.issuer.notAfter;
  }

  get trustDomain(): string {
    return this.material.state.trustDomain;
  }

  get bundle(): string[] {
    return this.material.bundle;
  }

  get signingCertificate(): Buffer {
    return this.material.signingCert;
  }

  get maxSvidTtlSeconds(): number {
    return this.material.state.maxSvidTtlSeconds;
  }

  /** Swaps in new material (after a root rotation step). Requests already signing finish with the old signer. */
  replaceMaterial(material: CaMaterial): void {
    this.material = material;
    this.issuer = this.useMaterial(material);
  }

  private useMaterial(material: CaMaterial): Issuer {
    const authority = { certificate: material.signingCert, chain: material.chain, privateKey: material.privateKey };
    this.signing.setAuthority(authority);
    return { authority, notAfter: new SvidSigner(authority).notAfter };
  }

  async sign(request: SvidRequest, caller: Caller, context: SignContext = {}): Promise<IssuedSvid> {
    const started = performance.now();
    const attempt: SignAttempt = { method: AUDIT_METHOD[caller.method], ...context, ...(request.spiffeId ? { spiffeId: request.spiffeId } : {}) };
    let svid: IssuedSvid;
    try {
      svid = await this.signChecked(request, caller, attempt);
    } catch (err) {
      const refusal = err instanceof CaError ? err : new CaError('internal', 'the CA failed to sign; see its log');
      const { requestId, principal } = attempt;
      this.logger?.warn({ method: caller.method, requestId, principal, code: refusal.code, reason: refusal.message, ...(err instanceof CaError ? {} : { err }) }, 'SVID refused');
      // Refused either way: a refusal that cannot be recorded is logged, and still a refusal.
      await this.record({ ...attempt, latencyMs: performance.now() - started, decision: 'refused', reason: refusal.code, message: refusal.message }).catch((auditErr: Error) =>
        this.logger?.error({ err: auditErr.message, requestId }, 'audit log append failed for a refusal'),
      );
      throw refusal;
    }
    const issued = { ...attempt, latencyMs: performance.now() - started, decision: 'issued' as const, serial: svid.serial, notAfter: svid.notAfter, ...(request.dnsNames?.length ? { dnsNames: request.dnsNames } : {}) };
    try {
      await this.record(issued);
    } catch (err) {
      // Fail closed: an SVID no record names is never handed out; nobody holds it.
      this.logger?.error({ err: (err as Error).message, requestId: attempt.requestId, serial: svid.serial, spiffeId: svid.spiffeId }, 'audit log append failed; the SVID was not issued');
      const refusal = new CaError('unavailable', 'the CA could not record this issuance in its audit log, so nothing was issued; try again later');
      this.opts.onOutcome?.({ ...attempt, latencyMs: issued.latencyMs, decision: 'refused', reason: refusal.code, message: refusal.message });
      throw refusal;
    }
    this.logger?.info({ requestId: attempt.requestId, spiffeId: svid.spiffeId, serial: svid.serial, notAfter: svid.notAfter.toISOString(), method: caller.method }, 'SVID issued');
    return svid;
  }

  /** Appends the audit record, then tells the observer: what the metrics count is what the log holds. */
  private async record(outcome: SignOutcome): Promise<void> {
    await this.audit.append(auditRecordOf(outcome, new Date()));
    this.opts.onOutcome?.(outcome);
  }

  private async signChecked(request: SvidRequest, caller: Caller, attempt: SignAttempt): Promise<IssuedSvid> {
    const entitlement = await this.entitlement(caller, attempt);
    const spiffeId = this.grantedId(request.spiffeId, entitlement?.spiffeId, caller);
    attempt.spiffeId = spiffeId;
    if (request.dnsNames?.length && caller.method !== 'operator' && caller.method !== 'self') {
      throw new CaError('permission_denied', 'DNS names can only be added by an operator (meshward ca issue); workloads are identified by their SPIFFE ID');
    }
    for (const dns of request.dnsNames ?? []) if (!DNS_NAME.test(dns)) throw new CaError('invalid_argument', `"${dns}" is not a valid DNS name`);
    const issuer = this.issuer;
    const validity = svidValidity({
      now: new Date(),
      ...(request.ttlSeconds !== undefined ? { requestedTtlSeconds: request.ttlSeconds } : {}),
      maxTtlSeconds: this.material.state.maxSvidTtlSeconds,
      defaultTtlSeconds: this.material.state.defaultSvidTtlSeconds,
      issuerNotAfter: issuer.notAfter,
    });
    const bundle = this.material.bundle;
    // The CSR is checked before a one-time token is used up, so a bad CSR does not cost the caller its token;
    // the token is recorded before anything is returned, and only one of two concurrent uses gets that far.
    const leaf = await this.signing.issue({ csr: request.csr, spiffeId, notBefore: validity.notBefore, notAfter: validity.notAfter, ...(request.dnsNames ? { dnsNames: request.dnsNames } : {}) });
    if (entitlement?.consume) await entitlement.consume();
    const chain = [leaf.der, ...issuer.authority.chain];
    return {
      spiffeId,
      chain,
      chainPem: chain.map(derToPem).join(''),
      bundle,
      serial: leaf.serialHex,
      notAfter: validity.notAfter,
      ...(validity.notice ? { notice: validity.notice } : {}),
    };
  }

  /**
   * The ID a caller may get, and how to use up a one-time credential once everything else checks out. Who the
   * caller proved to be goes into `attempt` as soon as it is known, so that a refusal after that names it.
   */
  private async entitlement(caller: Caller, attempt: SignAttempt): Promise<{ spiffeId?: string; consume?: () => Promise<void> } | undefined> {
    switch (caller.method) {
      case 'operator':
        attempt.principal = operatorPrincipal();
        return undefined;
      case 'self':
        attempt.principal = caller.spiffeId;
        return { spiffeId: caller.spiffeId };
      case 'svid':
        attempt.principal = caller.spiffeId;
        return { spiffeId: caller.spiffeId };
      case 'unusable-svid':
        throw new CaError('unauthenticated', `the client certificate is not a usable SVID: ${caller.reason}`);
      case 'join-token': {
        const claims = await this.tokens.authenticate(caller.token);
        attempt.principal = claims.spiffeId;
        this.tokens.ensureUnused(claims);
        return { spiffeId: claims.spiffeId, consume: () => this.tokens.consume(claims) };
      }
      case 'workload-token': {
        if (!this.opts.attestor) throw new CaError('unauthenticated', 'this CA does not accept platform tokens; present a join token');
        const attested = await this.opts.attestor.attest(caller.token);
        if (!attested.ok) throw new CaError(attested.code, attested.reason);
        attempt.principal = attested.spiffeId;
        return { spiffeId: attested.spiffeId };
      }
      case 'none':
        throw new CaError('unauthenticated', 'present a join token, or renew over mTLS with your current, valid SVID');
    }
  }

  private grantedId(requested: string | undefined, entitled: string | undefined, caller: Caller): string {
    if (requested !== undefined && requested !== '') {
      const id = parseSvidId(requested);
      if (!id.ok) throw new CaError('invalid_argument', id.error);
      if (id.value.trustDomain !== this.trustDomain) {
        throw new CaError('invalid_argument', `${requested} is in the trust domain "${id.value.trustDomain}"; this CA issues for "${this.trustDomain}" only`);
      }
      if (entitled !== undefined && requested !== entitled) {
        const how =
          caller.method === 'svid'
            ? 'renewal keeps the identity of the SVID presented'
            : caller.method === 'workload-token'
              ? 'the platform token proves another identity'
              : 'the join token is bound to another ID';
        throw new CaError('permission_denied', `${requested} may not be issued to this caller: ${how} (${entitled})`);
      }
      return requested;
    }
    if (entitled === undefined) throw new CaError('invalid_argument', 'a SPIFFE ID is required');
    return entitled;
  }

  async close(): Promise<void> {
    const [head] = await Promise.all([this.audit.close(), this.tokens.close(), this.signing.close()]);
    // Kept apart from the log itself, the head hash is what shows a truncated audit log.
    if (head !== undefined) this.logger?.info({ auditLog: this.audit.path, head }, 'audit log closed');
  }
}
