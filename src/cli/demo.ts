import { runDemo } from '../demo/index.js';
import { parseFlags, type Command } from './command.js';

const usage = `
Usage: meshward demo [--keep] [--verbose]

Runs the whole mesh on this machine, in a temporary directory and on loopback ports: the CA, two apps (web and
orders) each behind its own sidecar with an SVID bought with a join token, and a policy under which web may
GET /api/orders/* and nothing else. It sends traffic and prints what happened: allowed and denied calls with the
deciding rule, a caller without a certificate refused at the handshake, a forged x-forwarded-client-cert removed,
and a live certificate renewal under traffic with zero failed requests. Then it stops everything and removes the
directory (on Ctrl-C too). Exit 0 when every check passes, 1 when one fails, 130 when interrupted.

Options:
  --keep      leave the mesh running after the checks, print its addresses and curl commands to try; Ctrl-C ends it
  --verbose   the components' logs on stderr (by default they go to a file in the temporary directory)
`;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run the whole mesh on this machine and show what it does',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, { keep: { type: 'boolean' }, verbose: { type: 'boolean' } });
    return runDemo({ keep: values.keep ?? false, verbose: values.verbose ?? false });
  },
};
