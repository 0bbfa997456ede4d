import { DEFAULT_CA_ADDRESS, DEFAULT_TRUST_DOMAIN, defaultImage, isHostPort, type InjectOptions } from '../kube/index.js';
import { validateTrustDomain } from '../spiffe/id.js';
import { packageVersion, UsageError } from './command.js';

// The flags `meshward inject` and `meshward injector` share, so that the CLI and the webhook inject alike.

export const INJECT_FLAGS = {
  'trust-domain': { type: 'string' },
  'ca-address': { type: 'string' },
  image: { type: 'string' },
} as const;

export const INJECT_FLAGS_USAGE = `
  --trust-domain TD     the trust domain of the pods' SPIFFE IDs (default ${DEFAULT_TRUST_DOMAIN})
  --ca-address H:P      the meshward CA as pods reach it (default ${DEFAULT_CA_ADDRESS})
  --image IMG           the sidecar image (default ${defaultImage('<this version>')})`;

export function injectOptionsFromFlags(values: { 'trust-domain'?: string; 'ca-address'?: string; image?: string }): Omit<InjectOptions, 'namespace'> {
  const trustDomain = values['trust-domain'] ?? DEFAULT_TRUST_DOMAIN;
  const tdError = validateTrustDomain(trustDomain);
  if (tdError) throw new UsageError(`--trust-domain "${trustDomain}": ${tdError}`);
  const caAddress = values['ca-address'] ?? DEFAULT_CA_ADDRESS;
  if (!isHostPort(caAddress)) throw new UsageError(`--ca-address "${caAddress}" is not HOST:PORT`);
  const image = values.image ?? defaultImage(packageVersion());
  if (image === '' || /\s/.test(image)) throw new UsageError(`--image "${image}" is not an image reference`);
  return { trustDomain, caAddress, image };
}
