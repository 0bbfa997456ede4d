// The principal an API key gives its caller at the edge: `apikey:NAME`. The apiKey filter sets it; policies
// (`from.principals`, `source.principal`) and rate-limit keys name it. Both sides read the name rule here, so a
// name the filter accepts is always one a policy can spell.

export const API_KEY_PRINCIPAL_PREFIX = 'apikey:';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const API_KEY_NAME_RULE = 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit';

export function isApiKeyName(name: string): boolean {
  return NAME.test(name);
}

export function apiKeyPrincipal(name: string): string {
  return `${API_KEY_PRINCIPAL_PREFIX}${name}`;
}
