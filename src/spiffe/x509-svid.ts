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

/**
 * Splits certificates given as ASN.1 DER one after another (the SPIFFE Workload API's encoding of a chain or a
 * bundle), by the length each one's outer SEQUENCE declares.
 */
export function splitDerCertificates(der: Buffer): Buffer[] {
  const certificates: Buffer[] = [];
  let rest = der;
  while (rest.length > 0) {
    const first = rest[1] ?? 0;
    const octets = first & 0x7f;
    const length = first < 0x80 ? 2 + first : 2 + octets + rest.subarray(2, 2 + octets).reduce((n, byte) => n * 256 + byte, 0);
    if (rest[0] !== 0x30 || length > rest.length) throw new Error('not a list of DER certificates');
    certificates.push(rest.subarray(0, length));
    rest = rest.subarray(length);
  }
  return certificates;
}

export function derToPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}
