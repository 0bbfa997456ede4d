import type { Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, envDetector, detectResources, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from '@opentelemetry/sdk-trace';

// Traces, configured the standard way: by the OTEL_* environment variables of the OpenTelemetry specification
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/). Off unless they ask for an
// export, so a sidecar without a collector spends nothing on spans. On when OTEL_TRACES_EXPORTER names `otlp`, or
// when it is unset and an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is given;
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off. The exporter reads its endpoint, headers, TLS
// files and timeout from the same variables itself. A variable meshward cannot honour is an error at start, not a
// silent loss of every trace.

export type OtlpProtocol = 'http/protobuf' | 'http/json';

export interface TracingSettings {
  protocol: OtlpProtocol;
  sampler: Sampler;
  /** OTEL_BSP_* batch settings; absent ones keep the SDK's defaults. */
  batch: { scheduledDelayMillis?: number; exportTimeoutMillis?: number; maxQueueSize?: number; maxExportBatchSize?: number };
}

type Env = Record<string, string | undefined>;

/** The settings the environment asks for, undefined when tracing is off; throws naming the variable that is wrong. */
export function tracingSettingsFromEnv(env: Env): TracingSettings | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  const exporters = list(env.OTEL_TRACES_EXPORTER);
  if (exporters.length > 0) {
    const unsupported = exporters.filter((e) => e !== 'otlp' && e !== 'none');
    if (unsupported.length > 0) throw new Error(`OTEL_TRACES_EXPORTER: "${unsupported.join(',')}" is not supported; meshward exports traces by OTLP ("otlp") or not at all ("none")`);
    if (!exporters.includes('otlp')) return undefined;
  } else if (!nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) && !nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT)) {
    return undefined;
  }
  return { protocol: protocolOf(env), sampler: samplerOf(env), batch: batchOf(env) };
}

export interface Tracing {
  tracer: Tracer;
  /** Exports what is buffered, then stops. */
  shutdown(): Promise<void>;
}

/**
 * A tracer provider of its own (not the global one), so that several components in one process keep their own
 * resource. `serviceName` applies unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise.
 */
export function startTracing(settings: TracingSettings, serviceName: string): Tracing {
  const exporter = settings.protocol === 'http/json' ? new OtlpJsonExporter() : new OtlpProtobufExporter();
  // A later merge wins: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (read by envDetector) beat our default name.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': serviceName }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new TracerProvider({
    resource,
    sampler: settings.sampler,
    spanProcessors: [new BatchSpanProcessor({ exporter, ...settings.batch })],
  });
  return { tracer: provider.getTracer('meshward'), shutdown: () => provider.shutdown() };
}

function protocolOf(env: Env): OtlpProtocol {
  const name = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const value = env[name]?.trim() || 'http/protobuf';
  if (value === 'http/protobuf' || value === 'http/json') return value;
  throw new Error(`${name}: "${value}" is not supported; meshward exports OTLP over HTTP: use http/protobuf (the default) or http/json, with the collector's HTTP endpoint (port 4318)`);
}

function samplerOf(env: Env): Sampler {
  const name = env.OTEL_TRACES_SAMPLER?.trim() || 'parentbased_always_on';
  const ratio = (): number => {
    const raw = env.OTEL_TRACES_SAMPLER_ARG?.trim();
    if (!raw) return 1;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0 || value > 1) throw new Error(`OTEL_TRACES_SAMPLER_ARG: "${raw}" is not a ratio between 0 and 1`);
    return value;
  };
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio());
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio()) });
    default:
      throw new Error(`OTEL_TRACES_SAMPLER: "${name}" is not supported; use always_on, always_off, traceidratio or their parentbased_ forms`);
  }
}

function batchOf(env: Env): TracingSettings['batch'] {
  const batch: TracingSettings['batch'] = {};
  const read = (name: string, key: keyof TracingSettings['batch']) => {
    const raw = env[name]?.trim();
    if (!raw) return;
    const value = Number(raw);
    if (!Number.isInteger(value) || value <= 0) throw new Error(`${name}: "${raw}" is not a positive integer`);
    batch[key] = value;
  };
  read('OTEL_BSP_SCHEDULE_DELAY', 'scheduledDelayMillis');
  read('OTEL_BSP_EXPORT_TIMEOUT', 'exportTimeoutMillis');
  read('OTEL_BSP_MAX_QUEUE_SIZE', 'maxQueueSize');
  read('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'maxExportBatchSize');
  return batch;
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
}

function nonEmpty(value: string | undefined): boolean {
  return value !== undefined && value.trim() !== '';
}
