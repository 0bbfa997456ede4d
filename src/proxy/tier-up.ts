import { setFlagsFromString } from 'node:v8';

// V8 compiles a function with TurboFan, its optimising compiler, after 3,000 calls by default. A sidecar's warm-up
// (warm-up.ts) sends 2,000 requests, so the functions every request runs reached only the mid tier (Maglev, 400
// calls) before /readyz said ready, and TurboFan compiled them under the first seconds of real load, beside the
// requests: measured at 1,000 requests/s (bench/README.md, "The first seconds after ready"), a second among the 3rd
// to the 10th after ready reached 2.8-8x the warm p90 in three of five runs with the default, and at most 1.3x in
// four runs with 1,000 calls. The flag is read each time V8 decides to tier up, so it takes effect when set at run
// time; NODE_OPTIONS refuses it, so the sidecar sets it itself.

const FLAG = '--invocation-count-for-turbofan';
const CALLS = 1_000;

/** The V8 flag to set at run time, or undefined when the command line set the call count (the operator's choice stays). */
export function turbofanFlag(execArgv: readonly string[]): string | undefined {
  return execArgv.some((arg) => arg === FLAG || arg.startsWith(`${FLAG}=`)) ? undefined : `${FLAG}=${CALLS}`;
}

/** Lowers TurboFan's call count for this process (see above). */
export function optimiseSooner(): void {
  const flag = turbofanFlag(process.execArgv);
  if (flag !== undefined) setFlagsFromString(flag);
}
