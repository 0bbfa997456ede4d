import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { children, decodeOid, DerError, expectTag, readTlv, TAG, type Tlv } from './der.js';

// Checks a PKCS#10 CSR before anything is signed for it: size, shape, signature (proof of possession), key
// strength, and that it asks for nothing a workload may not have (a CA certificate, another identity).

export const MAX_CSR_BYTES = 16 * 1024;

const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';

const SIGNATURE_HASHES: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null, // Ed25519 hashes internally
};
const WEAK_SIGNATURES = new Set(['1.2.840.113549.1.1.5', '1.2.840.113549.1.1.4', '1.2.840.10045.4.1']);

const ALLOWED_CURVES = new Set(['prime256v1', 'secp384r1']);
export const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 8192;

export class CsrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsrError';
  }
}

export interface CheckedCsr {
  /** The SubjectPublicKeyInfo, copied as-is into the certificate. */
  spki: Buffer;
  publicKey: KeyObject;
  keyType: 'ec' | 'rsa' | 'ed25519';
  /** URI SANs the CSR asked for (the CA decides the identity; these must agree with it). */
  requestedUris: string[];
}

/** Accepts PEM or DER. Throws CsrError naming what is wrong. */
export function checkCsr(input: Buffer | string): CheckedCsr {
  const der = toDer(input);
  try {
    return checkDer(der);
  } catch (err) {
    if (err instanceof DerError) throw new CsrError(`the CSR is malformed: ${err.message}`);
    throw err;
  }
}

function toDer(input: Buffer | string): Buffer {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size === 0) throw new CsrError('the CSR is empty');
  if (size > MAX_CSR_BYTES) throw new CsrError(`the CSR is ${size} bytes; the limit is ${MAX_CSR_BYTES}`);
  const text = typeof input === 'string' ? input : input[0] === TAG.SEQUENCE ? undefined : input.toString('latin1');
  if (text === undefined) return input as Buffer;
  const m = /-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----([A-Za-z0-9+/=\s]+)-----END (?:NEW )?CERTIFICATE REQUEST-----/.exec(text);
  if (!m) throw new CsrError('the CSR is neither DER nor a PEM "CERTIFICATE REQUEST"');
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

function checkDer(der: Buffer): CheckedCsr {
  const outer = expectTag(readTlv(der, 0), TAG.SEQUENCE, 'CertificationRequest');
  if (outer.end !== der.length) throw new CsrError('the CSR has trailing data');
  const [info, sigAlg, signature] = children(der, outer);
  expectTag(info, TAG.SEQUENCE, 'certificationRequestInfo');
  expectTag(sigAlg, TAG.SEQUENCE, 'signatureAlgorithm');
  expectTag(signature, TAG.BIT_STRING, 'signature');
  const [version, subject, spkiNode, attributes] = children(der, info!);
  expectTag(version, TAG.INTEGER, 'version');
  expectTag(subject, TAG.SEQUENCE, 'subject');
  expectTag(spkiNode, TAG.SEQUENCE, 'subjectPKInfo');

  const spki = der.subarray(spkiNode!.start, spkiNode!.end);
  let publicKey: KeyObject;
  const ec = ecPoint(der, spkiNode!);
  try {
    // OpenSSL 3's DER decoder takes ~0.4 ms per key; building an EC key from its coordinates takes half that.
    publicKey = ec
      ? createPublicKey({ key: { kty: 'EC', crv: ec.crv, x: ec.x.toString('base64url'), y: ec.y.toString('base64url') }, format: 'jwk' })
      : createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw new CsrError('the CSR\'s public key is of an unknown or unsupported type (use ECDSA P-256/P-384, RSA 2048+ or Ed25519)');
  }
  const keyType = ec ? 'ec' : checkKeyStrength(publicKey);

  const sigOid = decodeOid(der, expectTag(children(der, sigAlg!)[0], TAG.OID, 'signature algorithm'));
  if (WEAK_SIGNATURES.has(sigOid)) throw new CsrError(`the CSR is signed with a weak algorithm (${sigOid}); use SHA-256 or stronger`);
  if (!(sigOid in SIGNATURE_HASHES)) throw new CsrError(`the CSR's signature algorithm ${sigOid} is not supported`);
  const sigBytes = der.subarray(signature!.contentStart + 1, signature!.end);
  const infoBytes = der.subarray(info!.start, info!.end);
  let valid = false;
  try {
    valid = verify(SIGNATURE_HASHES[sigOid]!, infoBytes, { key: publicKey, dsaEncoding: 'der' }, sigBytes);
  } catch {
    valid = false;
  }
  if (!valid) throw new CsrError('the CSR\'s signature does not verify: it was not signed by the key it carries');

  const requestedUris = attributes ? checkExtensionRequest(der, attributes) : [];
  return { spki: Buffer.from(spki), publicKey, keyType, requestedUris };
}

const EC_CURVES: Record<string, { crv: string; size: number }> = {
  '1.2.840.10045.3.1.7': { crv: 'P-256', size: 32 },
  '1.3.132.0.34': { crv: 'P-384', size: 48 },
};

/** The coordinates of an uncompressed P-256/P-384 point in an SPKI; undefined for anything else (the DER path decides). */
function ecPoint(der: Buffer, spki: Tlv): { crv: string; x: Buffer; y: Buffer } | undefined {
  const [algorithm, key] = children(der, spki);
  if (algorithm?.tag !== TAG.SEQUENCE || key?.tag !== TAG.BIT_STRING) return undefined;
  const [algorithmId, parameters] = children(der, algorithm);
  if (algorithmId?.tag !== TAG.OID || parameters?.tag !== TAG.OID || decodeOid(der, algorithmId) !== '1.2.840.10045.2.1') return undefined;
  const curve = EC_CURVES[decodeOid(der, parameters)];
  const point = der.subarray(key.contentStart + 1, key.end);
  if (!curve || der[key.contentStart] !== 0 || point.length !== 1 + 2 * curve.size || point[0] !== 0x04) return undefined;
  return { crv: curve.crv, x: point.subarray(1, 1 + curve.size), y: point.subarray(1 + curve.size) };
}

function checkKeyStrength(key: KeyObject): CheckedCsr['keyType'] {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec':
      if (!ALLOWED_CURVES.has(details.namedCurve ?? '')) {
        throw new CsrError(`the CSR uses the curve ${details.namedCurve ?? 'unknown'}; use P-256 or P-384`);
      }
      return 'ec';
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) throw new CsrError(`the CSR's RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`);
      if (bits > MAX_RSA_BITS) throw new CsrError(`the CSR's RSA key has ${bits} bits; at most ${MAX_RSA_BITS} are accepted`);
      return 'rsa';
    }
    case 'ed25519':
      return 'ed25519';
    default:
      throw new CsrError(`the CSR's key type ${key.asymmetricKeyType ?? 'unknown'} is not supported (use ECDSA P-256/P-384, RSA 2048+ or Ed25519)`);
  }
}

/** Refuses CA:TRUE; returns the URI SANs asked for. Other requested extensions are ignored: the CA sets the profile. */
function checkExtensionRequest(der: Buffer, attributes: Tlv): string[] {
  if (attributes.tag !== 0xa0) throw new CsrError('the CSR\'s attributes are malformed');
  const uris: string[] = [];
  for (const attribute of children(der, attributes)) {
    const [type, values] = children(der, expectTag(attribute, TAG.SEQUENCE, 'attribute'));
    if (decodeOid(der, expectTag(type, TAG.OID, 'attribute type')) !== OID_EXTENSION_REQUEST) continue;
    for (const extensions of children(der, expectTag(values, TAG.SET, 'attribute values'))) {
      for (const extension of children(der, expectTag(extensions, TAG.SEQUENCE, 'extensions'))) {
        const parts = children(der, expectTag(extension, TAG.SEQUENCE, 'extension'));
        const id = decodeOid(der, expectTag(parts[0], TAG.OID, 'extension id'));
        const value = expectTag(parts[parts.length - 1], TAG.OCTET_STRING, 'extension value');
        const inner = readTlv(der, value.contentStart, value.end);
        if (id === OID_BASIC_CONSTRAINTS) {
          const first = children(der, expectTag(inner, TAG.SEQUENCE, 'basicConstraints'))[0];
          if (first?.tag === TAG.BOOLEAN && der[first.contentStart] !== 0) {
            throw new CsrError('the CSR asks for a CA certificate (basicConstraints CA:TRUE); workloads get leaf certificates only');
          }
        } else if (id === OID_SUBJECT_ALT_NAME) {
          for (const name of children(der, expectTag(inner, TAG.SEQUENCE, 'subjectAltName'))) {
            if (name.tag === 0x86) uris.push(der.subarray(name.contentStart, name.end).toString('latin1'));
          }
        }
      }
    }
  }
  return uris;
}
