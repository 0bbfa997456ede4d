import { X509Certificate } from 'node:crypto';
import { parseSvidId, type ParseResult, type SpiffeId } from './id.js';
import { uriSubjectAltNames } from './san.js';

// The identity checks of the X509-SVID spec that a TLS stack does not do: exactly one URI SAN, a valid SPIFFE ID
// with a path (never the trust domain's own ID) in the expected trust domain, and a leaf that is not a CA. Chain and validity are left to the TLS stack.

export function svidIdentity(der: Buffer, trustDomain?: string): ParseResult<SpiffeId> {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    return { ok: false, error: 'the certificate cannot be parsed' };
  }
  if (cert.ca) return { ok: false, error: 'the certificate is a CA certificate, not an SVID' };
  const uris = uriSubjectAltNames(cert.subjectAltName);
  if (uris === undefined) return { ok: false, error: 'the certificate\'s subject alternative names cannot be read' };
  if (uris.length !== 1) return { ok: false, error: `an SVID must have exactly one URI SAN; this certificate has ${uris.length}` };
  const id = parseSvidId(uris[0]!);
  if (!id.ok) return id;
  if (trustDomain !== undefined && id.value.trustDomain !== trustDomain) {
    return { ok: false, error: `the SPIFFE ID ${id.value.uri} is not in the trust domain ${trustDomain}` };
  }
  return id;
}

/** Splits a PEM bundle into DER certificates, refusing anything that is not a certificate. */
export function pemToDerList(pem: string): Buffer[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => Buffer.from(new X509Certificate(block).raw));
}

export function derToPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}
