import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Attributes, Meter, ObservableResult } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

// What every component's metrics share: OpenTelemetry instruments read by a Prometheus exporter that the admin
// listener serves at /metrics (the exporter's own HTTP server is never started). One MeterProvider per component
// instance, not the global one, so that several components in one process (the demo, tests) keep their own counts.

export interface PrometheusMeter {
  meter: Meter;
  /** Serves the Prometheus text exposition. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
}

export function createPrometheusMeter(name: string): PrometheusMeter {
  // Scope and target info would add otel_scope_* labels to every series and a target_info family: Prometheus
  // already knows the target it scrapes, and there is one meter.
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, withoutTargetInfo: true });
  const provider = new MeterProvider({ readers: [exporter] });
  return {
    meter: provider.getMeter(name),
    handle: (req, res) => exporter.getMetricsRequestHandler(req, res),
    shutdown: () => provider.shutdown(),
  };
}

/**
 * A count per distinct pair of values, found by two Map lookups (no key string is built), with its attributes made
 * once. Backs observable counters on hot paths: the SDK's synchronous `counter.add` hashes the attribute set on
 * every call (sort + JSON.stringify, ~1 µs with three attributes); this costs tens of nanoseconds and the SDK reads
 * it only at a scrape.
 */
export class CountTable {
  private readonly rows = new Map<string, Map<string | number, { attributes: Attributes; count: number }>>();

  constructor(private readonly attributesOf: (a: string, b: string | number) => Attributes) {}

  increment(a: string, b: string | number): void {
    let row = this.rows.get(a);
    if (row === undefined) this.rows.set(a, (row = new Map()));
    const entry = row.get(b);
    if (entry === undefined) row.set(b, { attributes: this.attributesOf(a, b), count: 1 });
    else entry.count += 1;
  }

  /** Reports every count as a cumulative total. */
  observe(result: ObservableResult): void {
    for (const row of this.rows.values()) for (const { attributes, count } of row.values()) result.observe(count, attributes);
  }
}
