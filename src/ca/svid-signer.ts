import { createHash, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import {
  bitString,
  children,
  expectTag,
  explicit,
  octetString,
  oid,
  readTlv,
  sequence,
  TAG,
  time,
  tlv,
  unsignedInteger,
  decodeOid,
} from './der.js';

// Builds X509-SVID leaf certificates (SPIFFE X509-SVID spec, section 4) from a template: everything that does
// not change between leaves (issuer name, AKI, the fixed extensions, the signature algorithm) is encoded once.

const OID_SKI = '2.5.29.14';

const SIGNATURE_ALGORITHMS = {
  'ec:prime256v1': { der: sequence(oid('1.2.840.10045.4.3.2')), hash: 'sha256' },
  'ec:secp384r1': { der: sequence(oid('1.2.840.10045.4.3.3')), hash: 'sha384' },
  rsa: { der: sequence(oid('1.2.840.113549.1.1.11'), tlv(TAG.NULL, Buffer.alloc(0))), hash: 'sha256' },
  ed25519: { der: sequence(oid('1.3.101.112')), hash: null },
} as const;

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid(id), tlv(TAG.BOOLEAN, Buffer.from([0xff])), octetString(value)) : sequence(oid(id), octetString(value));
}

const BASIC_CONSTRAINTS_LEAF = extension('2.5.29.19', true, sequence());
// digitalSignature only; keyEncipherment as well for RSA keys, which TLS 1.2 RSA key exchange needs.
const KEY_USAGE_SIGNATURE = extension('2.5.29.15', true, tlv(TAG.BIT_STRING, Buffer.from([0x07, 0x80])));
const KEY_USAGE_SIGNATURE_ENCIPHERMENT = extension('2.5.29.15', true, tlv(TAG.BIT_STRING, Buffer.from([0x05, 0xa0])));
const EXT_KEY_USAGE_TLS = extension('2.5.29.37', false, sequence(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2')));
const EMPTY_SUBJECT = sequence();
const VERSION_3 = explicit(0, unsignedInteger(Buffer.from([2])));

export interface SigningAuthority {
  /** The certificate that signs leaves: a root, or an imported intermediate. */
  certificate: Buffer;
  /** Certificates sent after each leaf so a peer holding only the roots can build the path (empty for a root). */
  chain: Buffer[];
  privateKey: KeyObject;
}

export interface LeafRequest {
  /** SubjectPublicKeyInfo DER of the workload's key. */
  spki: Buffer;
  spiffeId: string;
  dnsNames?: readonly string[];
  notBefore: Date;
  notAfter: Date;
  /** Whether the key is RSA (adds keyEncipherment). */
  rsa?: boolean;
}

export interface SignedLeaf {
  der: Buffer;
  serialHex: string;
}

export class SvidSigner {
  private readonly issuerName: Buffer;
  private readonly authorityKeyId: Buffer;
  private readonly signatureAlgorithm: { der: Buffer; hash: string | null };
  readonly notAfter: Date;

  constructor(readonly authority: SigningAuthority) {
    const cert = authority.certificate;
    const tbs = children(cert, readTlv(cert, 0))[0]!;
    const fields = children(cert, tbs);
    // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, spki, ..., [3] extensions
    const offset = fields[0]!.tag === 0xa0 ? 1 : 0;
    const subject = expectTag(fields[offset + 4], TAG.SEQUENCE, 'CA subject');
    this.issuerName = Buffer.from(cert.subarray(subject.start, subject.end));
    this.notAfter = new Date(new X509Certificate(cert).validTo);
    const spki = expectTag(fields[offset + 5], TAG.SEQUENCE, 'CA public key');
    const extensions = fields.find((f) => f.tag === 0xa3);
    let keyId: Buffer | undefined;
    if (extensions) {
      for (const ext of children(cert, children(cert, extensions)[0]!)) {
        const parts = children(cert, ext);
        if (decodeOid(cert, parts[0]!) === OID_SKI) {
          const value = parts[parts.length - 1]!;
          const inner = readTlv(cert, value.contentStart, value.end);
          keyId = Buffer.from(cert.subarray(inner.contentStart, inner.end));
        }
      }
    }
    this.authorityKeyId = extension('2.5.29.35', false, sequence(tlv(0x80, keyId ?? subjectKeyId(cert.subarray(spki.start, spki.end)))));
    this.signatureAlgorithm = signatureAlgorithmFor(authority.privateKey);
  }

  sign(request: LeafRequest): SignedLeaf {
    const serial = randomBytes(16);
    // Positive (top bit clear) and always 16 bytes long: about 126 random bits, well over the 64 required.
    serial[0] = (serial[0]! & 0x7f) | 0x40;
    const names = [tlv(0x86, Buffer.from(request.spiffeId, 'latin1'))];
    for (const dns of request.dnsNames ?? []) names.push(tlv(0x82, Buffer.from(dns, 'latin1')));
    const tbs = sequence(
      VERSION_3,
      unsignedInteger(serial),
      this.signatureAlgorithm.der,
      this.issuerName,
      sequence(time(request.notBefore), time(request.notAfter)),
      EMPTY_SUBJECT,
      request.spki,
      explicit(
        3,
        sequence(
          BASIC_CONSTRAINTS_LEAF,
          request.rsa ? KEY_USAGE_SIGNATURE_ENCIPHERMENT : KEY_USAGE_SIGNATURE,
          EXT_KEY_USAGE_TLS,
          // Critical: the subject is empty, so the SAN carries the whole identity (RFC 5280 4.2.1.6).
          extension('2.5.29.17', true, sequence(...names)),
          extension(OID_SKI, false, octetString(subjectKeyId(request.spki))),
          this.authorityKeyId,
        ),
      ),
    );
    const signature = sign(this.signatureAlgorithm.hash, tbs, { key: this.authority.privateKey, dsaEncoding: 'der' });
    return { der: sequence(tbs, this.signatureAlgorithm.der, bitString(signature)), serialHex: serial.toString('hex') };
  }
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
export function subjectKeyId(spki: Buffer): Buffer {
  const key = children(spki, readTlv(spki, 0))[1]!;
  return createHash('sha1').update(spki.subarray(key.contentStart + 1, key.end)).digest();
}

function signatureAlgorithmFor(key: KeyObject): { der: Buffer; hash: string | null } {
  const type = key.asymmetricKeyType;
  const id = type === 'ec' ? `ec:${key.asymmetricKeyDetails?.namedCurve}` : type;
  const alg = SIGNATURE_ALGORITHMS[id as keyof typeof SIGNATURE_ALGORITHMS];
  if (!alg) throw new Error(`the CA key type ${id} cannot sign SVIDs (use ECDSA P-256/P-384, RSA or Ed25519)`);
  return alg;
}
