// `meshward inject` as a user runs it: the real CLI on sample manifests, its output checked against the pure
// transform and against the Kubernetes schema.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { injectSidecar } from '../../src/kube/index.js';
import { runCli } from '../helpers/cli.js';
import { FIXTURES, fixtureDocuments, OPTIONS, yamlDocuments } from '../helpers/kube.js';
import { kubernetesSchemaErrors } from '../helpers/kube-schema.js';

const fixture = (name: string) => join(FIXTURES, name);
const flags = ['--image', OPTIONS.image];

describe('meshward inject', () => {
  it('prints every document in order, workloads injected exactly as the transform does', async () => {
    const r = await runCli(['inject', '-f', fixture('workloads.yaml'), ...flags]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const printed = yamlDocuments(r.stdout);
    const expected = fixtureDocuments('workloads.yaml').map((d) => injectSidecar(d, OPTIONS).manifest);
    expect(printed).toEqual(expected);
    expect(await kubernetesSchemaErrors(printed.map((object, i) => ({ label: `inject output #${i + 1}`, object })))).toEqual([]);
  });

  it('keeps a document it does not change as written, comments included', async () => {
    const r = await runCli(['inject', '-f', fixture('deployment.yaml'), ...flags]);
    expect(r.code).toBe(0);
    const [, service] = r.stdout.split(/^---$/m);
    const original = readFileSync(fixture('deployment.yaml'), 'utf8').split(/^---$/m)[1];
    expect(service).toBe(original);
  });

  it('reads standard input with -f -, and injecting its own output again changes nothing', async () => {
    const once = await runCli(['inject', '-f', '-', ...flags], { input: readFileSync(fixture('list.yaml'), 'utf8') });
    expect(once.code).toBe(0);
    expect(yamlDocuments(once.stdout)).toEqual(fixtureDocuments('list.yaml').map((d) => injectSidecar(d, OPTIONS).manifest));
    const twice = await runCli(['inject', '-f', '-', ...flags], { input: once.stdout });
    expect(twice.code).toBe(0);
    expect(twice.stdout).toBe(once.stdout);
  });

  it('takes the trust domain, CA address and namespace from flags', async () => {
    const r = await runCli(['inject', '-f', fixture('workloads.yaml'), '--trust-domain', 'prod.example.org', '--ca-address', 'ca.mesh:9443', '--namespace', 'staging']);
    expect(r.code).toBe(0);
    const replicaSet = yamlDocuments(r.stdout).find((d) => d.kind === 'ReplicaSet') as { spec: { template: { metadata: { annotations: Record<string, string> }; spec: { initContainers: { image: string }[] } } } };
    const config = replicaSet.spec.template.metadata.annotations['meshward.io/sidecar-config'];
    expect(config).toContain('spiffeId: spiffe://prod.example.org/ns/staging/sa/default');
    expect(config).toContain('address: ca.mesh:9443');
    expect(replicaSet.spec.template.spec.initContainers[0]!.image).toMatch(/^ghcr\.io\/meshward\/meshward:\d+\.\d+\.\d+/);
  });

  it('names the document and the path of what stops injection', async () => {
    // Relative to the working directory (the repository): the error names the file exactly so.
    const r = await runCli(['inject', '-f', 'test/fixtures/kube/host-network.yaml']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^meshward inject: test\/fixtures\/kube\/host-network\.yaml: document 2: spec\.template\.spec\.hostNetwork: a hostNetwork pod shares the node's ports/);
  });

  it('refuses bad input and bad flags with a reason', async () => {
    const yaml = await runCli(['inject', '-f', '-'], { input: 'apiVersion: v1\nkind: ConfigMap\n---\nkind: [\n' });
    expect(yaml.code).toBe(1);
    expect(yaml.stderr).toMatch(/^meshward inject: <stdin>: document 2: invalid YAML: /);
    const missing = await runCli(['inject', '-f', fixture('nope.yaml')]);
    expect(missing.stderr).toMatch(/nope\.yaml: file not found/);
    const td = await runCli(['inject', '-f', '-', '--trust-domain', 'Bad_Domain']);
    expect(td.code).toBe(2);
    expect(td.stderr).toMatch(/--trust-domain "Bad_Domain": trust domain must be lower case/);
    const noFile = await runCli(['inject']);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toMatch(/missing required flag --filename/);
  });
});
