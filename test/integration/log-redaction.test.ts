import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';

// Secrets sent every way they reach a log, through the real logger in a real process; then the whole output is
// searched for them.
describe('log redaction', () => {
  it('keeps credentials, tokens and private keys out of every log line', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy93ZWIifQ.c2lnbmF0dXJlLXNlY3JldA';
    const pem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const secrets = {
      authorization: 'Bearer sekrit-bearer-value',
      proxy: 'Basic dXNlcjpzZWtyaXQtcHJveHk=',
      cookie: 'session=sekrit-cookie',
      setCookie: 'id=sekrit-set-cookie; HttpOnly',
      apiKey: 'sekrit-api-key',
      queryToken: 'sekrit-query-token',
      queryApiKey: 'sekrit-query-api-key',
      joinToken: jwt,
    };
    const script = `
      import { createLogger } from '${join(REPO_ROOT, 'dist/telemetry/logger.js')}';
      const s = ${JSON.stringify(secrets)};
      const pem = ${JSON.stringify(pem)};
      const log = createLogger('test');
      log.info({ headers: { authorization: s.authorization, 'proxy-authorization': s.proxy, cookie: s.cookie,
        'set-cookie': [s.setCookie], 'x-api-key': s.apiKey, 'x-custom': 'token ' + s.joinToken } }, 'request');
      log.info({ path: '/api?access_token=' + s.queryToken + '&api_key=' + s.queryApiKey + '&page=2' }, 'query');
      log.warn({ token: s.joinToken }, 'join token received');
      log.warn('free text with ' + s.joinToken + ' and ' + s.authorization);
      log.error({ err: new Error('could not parse ' + pem) }, 'key trouble');
      log.info({ nested: { deeper: [{ note: pem }] } }, 'nested');
      log.flush();
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, MESHWARD_LOG_LEVEL: 'info' } });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(6);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    const needles = ['sekrit-bearer-value', 'dXNlcjpzZWtyaXQtcHJveHk', 'sekrit-cookie', 'sekrit-set-cookie', 'sekrit-api-key', 'sekrit-query-token', 'sekrit-query-api-key', jwt.split('.')[2]!];
    for (const needle of needles) expect(r.stderr, needle).not.toContain(needle);
    expect(r.stderr).not.toContain('PRIVATE KEY-----\n');
    expect(r.stderr).not.toContain(pem.split('\n')[1]!);
    // What is not secret stays readable.
    expect(r.stderr).toContain('page=2');
    expect(r.stderr).toContain('"msg":"join token received"');
    expect(r.stderr).toMatch(/"err":\{"type":"Error","message":"could not parse \[redacted private key\]/);
  });
});
