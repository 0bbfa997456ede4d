import { parseYaml, sidecarConfigSchema } from '../../src/config/index.js';

/** The problems the sidecar schema finds in `config` (as the file sidecar.yaml), one message a line; none: []. */
export function sidecarConfigProblems(config: unknown): string[] {
  try {
    parseYaml(JSON.stringify(config), sidecarConfigSchema, 'sidecar.yaml');
    return [];
  } catch (err) {
    return (err as Error).message.split('\n');
  }
}
