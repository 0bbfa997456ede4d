import { readFile } from 'node:fs/promises';
import { parseAllDocuments, stringify } from 'yaml';
import { injectSidecar, isObject, ManifestError, type InjectOptions } from '../kube/index.js';
import { INJECT_FLAGS, INJECT_FLAGS_USAGE, injectOptionsFromFlags } from './inject-flags.js';
import { parseFlags, required, UsageError, type Command } from './command.js';

const usage = `
Usage: meshward inject -f FILE [--trust-domain TD] [--ca-address HOST:PORT] [--image IMG] [--namespace NS]

Prints the manifests in FILE (- for standard input) with the meshward sidecar added to every pod template:
Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, and those inside a List. Other documents are
printed as they are. Injecting twice changes nothing; the annotation meshward.io/inject: "false" opts out.

Options:
  -f, --filename FILE   the manifests (multi-document YAML or JSON); - reads standard input${INJECT_FLAGS_USAGE}
  --namespace NS        for documents without metadata.namespace: the namespace they will be applied to
                        (part of the pod's SPIFFE ID; default "default", as kubectl's)
`;

export const injectCommand: Command = {
  name: 'inject',
  summary: 'add the sidecar to Kubernetes manifests',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, { filename: { type: 'string', short: 'f' }, namespace: { type: 'string' }, ...INJECT_FLAGS });
    const file = required(values.filename, 'filename');
    const namespace = values.namespace;
    if (namespace !== undefined && !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) throw new UsageError(`--namespace "${namespace}" is not a namespace name`);
    const options: InjectOptions = { ...injectOptionsFromFlags(values), ...(namespace ? { defaultNamespace: namespace } : {}) };
    const text = file === '-' ? await readStdin() : await readManifestFile(file);
    process.stdout.write(injectDocuments(text, file === '-' ? '<stdin>' : file, options));
    return 0;
  },
};

/**
 * Each document in order: a workload comes out injected (re-serialized, so its comments are lost), anything else
 * exactly as it was written. Errors name the document (counted from 1) and the path inside it.
 */
function injectDocuments(text: string, label: string, options: InjectOptions): string {
  const out: string[] = [];
  parseAllDocuments(text, { uniqueKeys: true, prettyErrors: false }).forEach((doc, i) => {
    const where = `${label}: document ${i + 1}`;
    const error = doc.errors[0];
    if (error) throw new Error(`${where}: invalid YAML: ${error.message.split('\n')[0]}`);
    const manifest: unknown = doc.toJS({ maxAliasCount: 100 });
    if (manifest === null || manifest === undefined) return;
    if (!isObject(manifest)) throw new Error(`${where}: is not a Kubernetes object (a mapping with apiVersion and kind)`);
    let result;
    try {
      result = injectSidecar(manifest, options);
    } catch (err) {
      if (err instanceof ManifestError) throw new Error(`${where}: ${err.message}`);
      throw err;
    }
    // Documents are joined with "---" below, so each one's own start marker is left out.
    doc.directives.docStart = null;
    const printed = result.changed ? stringify(result.manifest, { lineWidth: 0 }) : doc.toString({ lineWidth: 0 });
    out.push(printed.endsWith('\n') ? printed : `${printed}\n`);
  });
  return out.join('---\n');
}

async function readManifestFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new Error(`${file}: ${reason}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}
