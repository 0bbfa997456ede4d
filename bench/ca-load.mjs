import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

// Closed-loop load: `concurrency` workers each send one request, wait for it, send the next. Only requests that
// complete inside the measured window (after the warm-up) count, so the rate is the server's steady state.

/**
 * @param {object} o
 * @param {number} o.concurrency
 * @param {number} o.warmupMs
 * @param {number} o.durationMs
 * @param {(worker: number) => Promise<boolean>} o.request  resolves false when there is nothing left to send
 * @param {() => number} [o.serverCpuMs]  CPU time used so far by the server process, if it is a child
 */
export async function runLoad({ concurrency, warmupMs, durationMs, request, serverCpuMs }) {
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  const latencies = [];
  let errors = 0;
  let firstError;
  let exhausted = false;
  let cpuAtStart;
  const marker = setTimeout(() => {
    cpuAtStart = { client: process.cpuUsage(), server: serverCpuMs?.() };
  }, warmupMs);

  const worker = async (i) => {
    while (performance.now() < end) {
      const t0 = performance.now();
      let more;
      try {
        more = await request(i);
      } catch (err) {
        errors++;
        firstError ??= err;
        continue;
      }
      const t1 = performance.now();
      if (!more) {
        exhausted = true;
        return;
      }
      if (t1 >= measureFrom && t1 <= end) latencies.push(t1 - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  clearTimeout(marker);
  const elapsedMs = Math.min(performance.now(), end) - measureFrom;
  const client = cpuAtStart ? process.cpuUsage(cpuAtStart.client) : undefined;
  const clientCpu = client ? (client.user + client.system) / 1000 / elapsedMs : undefined;
  const serverCpu = cpuAtStart?.server !== undefined ? serverCpuMs() - cpuAtStart.server : undefined;
  return {
    ...summarise(latencies, elapsedMs),
    errors,
    firstError,
    exhausted,
    clientCpu: serverCpuMs ? clientCpu : undefined,
    // Without a server process the load runs in-process, and this process is the server.
    serverCpu: serverCpuMs ? (serverCpu !== undefined ? serverCpu / elapsedMs : undefined) : clientCpu,
  };
}

/** Runs `fn` (synchronous, one certificate per call) on this thread for `durationMs` after a warm-up. */
export function runSync({ warmupMs, durationMs, fn }) {
  const warmEnd = performance.now() + warmupMs;
  while (performance.now() < warmEnd) fn();
  const cpuAtStart = process.cpuUsage();
  const latencies = [];
  const start = performance.now();
  const end = start + durationMs;
  let now = start;
  while (now < end) {
    fn();
    const t = performance.now();
    latencies.push(t - now);
    now = t;
  }
  const cpu = process.cpuUsage(cpuAtStart);
  // In-process: this thread is the server.
  return { ...summarise(latencies, now - start), errors: 0, clientCpu: undefined, serverCpu: (cpu.user + cpu.system) / 1000 / (now - start) };
}

function summarise(latencies, elapsedMs) {
  const sorted = Float64Array.from(latencies).sort();
  const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);
  return { count: sorted.length, rate: (sorted.length * 1000) / elapsedMs, p50: at(0.5), p99: at(0.99) };
}

let ticksPerSecond;
/** user+system CPU ms from a /proc/.../stat text (the fields after the command name, which may hold spaces). */
function statCpuMs(stat) {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  // State is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

/** user+system CPU milliseconds of a process, from /proc (Linux); undefined elsewhere. */
export function processCpuMs(pid) {
  try {
    return statCpuMs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * user+system CPU milliseconds of a process by kind of thread, from /proc/PID/task (Linux): Node names its threads
 * (node-MainThread: the event loop; node-V8Worker: GC helpers and the optimising compiler; libuv-worker: the thread
 * pool, file I/O), so what the event loop costs can be told from what V8 does beside it. Undefined elsewhere.
 */
export function threadCpuMs(pid) {
  try {
    const byName = {};
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      byName[name] = (byName[name] ?? 0) + statCpuMs(stat);
    }
    return byName;
  } catch {
    return undefined;
  }
}

/** Resident set size of a process in MB (VmRSS in /proc/PID/status; Linux); undefined elsewhere or once it exited. */
export function processRssMb(pid) {
  try {
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return kb ? Number(kb[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
