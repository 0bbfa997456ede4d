import { ConfigError } from '../config/index.js';
import { packageVersion, UsageError, type Command } from './command.js';

// Subcommands load lazily so that `meshward --help` and each command start without loading the others.
// A command without `load` is part of the planned surface but not built yet: it says so and exits 2.
const COMMANDS: Record<string, { summary: string; load?: () => Promise<Command> }> = {
  ca: { summary: 'run and manage the built-in certificate authority', load: async () => (await import('./ca.js')).caCommand },
  sidecar: { summary: 'run the mTLS sidecar (inbound and outbound listeners)', load: async () => (await import('./sidecar.js')).sidecarCommand },
  authz: { summary: 'serve the policy engine as an Envoy ext_authz gRPC service', load: async () => (await import('./authz.js')).authzCommand },
  extproc: { summary: "run a listener's filter chain for Envoy (ext_proc)", load: async () => (await import('./extproc.js')).extprocCommand },
  ratelimit: { summary: 'serve global rate limits (Envoy RLS, envoyproxy/ratelimit config, counts in Redis)', load: async () => (await import('./ratelimit.js')).ratelimitCommand },
  policy: { summary: 'check, explain and test policy files', load: async () => (await import('./policy.js')).policyCommand },
  capture: { summary: "redirect the pod's traffic through the sidecar (iptables or nft)", load: async () => (await import('./capture.js')).captureCommand },
  inject: { summary: 'add the sidecar to Kubernetes manifests', load: async () => (await import('./inject.js')).injectCommand },
  injector: { summary: 'run the Kubernetes mutating admission webhook', load: async () => (await import('./injector.js')).injectorCommand },
  apikey: { summary: 'make API keys for the apiKey filter', load: async () => (await import('./apikey.js')).apikeyCommand },
  audit: { summary: 'verify tamper-evident audit logs', load: async () => (await import('./audit.js')).auditCommand },
  demo: { summary: 'run the whole mesh on this machine and show what it does', load: async () => (await import('./demo.js')).demoCommand },
};

function topLevelHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'meshward: a zero-trust front door for every service',
    '',
    'Usage: meshward <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `meshward <command> --help` for a command\'s options.',
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(topLevelHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`meshward: unknown command "${name}"\n\n${topLevelHelp()}`);
    return 2;
  }
  if (!entry.load) {
    process.stderr.write(`meshward ${name}: not available in this version yet\n`);
    return 2;
  }
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.usage.trim()}\n`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`meshward ${name}: ${err.message}\n\n${command.usage.trim()}\n`);
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`meshward ${name}: invalid configuration\n${err.message}\n`);
      return 1;
    }
    process.stderr.write(`meshward ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
