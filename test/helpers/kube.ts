import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { InjectOptions, JsonObject } from '../../src/kube/index.js';
import { REPO_ROOT } from './cli.js';

export const FIXTURES = join(REPO_ROOT, 'test/fixtures/kube');

export const OPTIONS: InjectOptions = {
  trustDomain: 'cluster.local',
  caAddress: 'meshward-ca.meshward-system.svc:8443',
  image: 'ghcr.io/meshward/meshward:test',
};

/** The documents of a multi-document YAML text, empty documents left out. */
export function yamlDocuments(text: string): JsonObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as JsonObject | null)
    .filter((d): d is JsonObject => d !== null);
}

export function fixtureDocuments(name: string): JsonObject[] {
  return yamlDocuments(readFileSync(join(FIXTURES, name), 'utf8'));
}
