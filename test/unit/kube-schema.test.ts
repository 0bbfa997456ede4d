// The schema check the Kubernetes tests rely on must itself catch what the API server would refuse.
import { describe, expect, it } from 'vitest';
import { kubernetesSchemaErrors } from '../helpers/kube-schema.js';

const deployment = (container: Record<string, unknown>) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web' },
  spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [container] } } },
});

describe('kubernetesSchemaErrors', () => {
  it('accepts a valid object', async () => {
    expect(await kubernetesSchemaErrors([{ label: 'ok', object: deployment({ name: 'web', image: 'web:1' }) }])).toEqual([]);
  });

  it('refuses a wrong type, a missing required field and an unknown field', async () => {
    const errors = await kubernetesSchemaErrors([
      { label: 'type', object: deployment({ name: 'web', ports: [{ containerPort: '8080' }] }) },
      { label: 'required', object: deployment({ image: 'web:1' }) },
      { label: 'unknown', object: deployment({ name: 'web', readinessprobe: {} }) },
    ]);
    expect(errors.join('\n')).toMatch(/type: Deployment web: .*containerPort must be integer/);
    expect(errors.join('\n')).toMatch(/required: Deployment web: .*must have required property name/);
    expect(errors.join('\n')).toMatch(/unknown: Deployment web: .*'"?readinessprobe"?' does not exist/);
  });

  it('refuses a kind it has no schema for', async () => {
    expect(await kubernetesSchemaErrors([{ label: 'crd', object: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } } }])).toEqual([
      expect.stringMatching(/no schema for example.com\/v1 Widget/),
      expect.stringMatching(/Cannot find module/),
    ]);
  });
});
