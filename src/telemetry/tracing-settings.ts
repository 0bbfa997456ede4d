// Traces, configured the standard way: by the OTEL_* environment variables of the OpenTelemetry specification
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/). Off unless they ask for an
// export, so a sidecar without a collector spends nothing on spans. On when OTEL_TRACES_EXPORTER names `otlp`, or
// when it is unset and an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is given;
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off. The exporter reads its endpoint, headers, TLS
// files and timeout from the same variables itself. A variable meshward cannot honour is an error at start, not a
// silent loss of every trace.

export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** OTEL_TRACES_SAMPLER and its argument, as data: the SDK that builds the sampler loads only when tracing is on. */
export interface SamplerSpec {
  name: 'always_on' | 'always_off' | 'traceidratio' | 'parentbased_always_on' | 'parentbased_always_off' | 'parentbased_traceidratio';
  /** For the traceidratio forms. */
  ratio?: number;
}

export interface TracingSettings {
  protocol: OtlpProtocol;
  sampler: SamplerSpec;
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

function protocolOf(env: Env): OtlpProtocol {
  const name = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const value = env[name]?.trim() || 'http/protobuf';
  if (value === 'http/protobuf' || value === 'http/json') return value;
  throw new Error(`${name}: "${value}" is not supported; meshward exports OTLP over HTTP: use http/protobuf (the default) or http/json, with the collector's HTTP endpoint (port 4318)`);
}

const SAMPLERS: ReadonlySet<string> = new Set(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio']);

function samplerOf(env: Env): SamplerSpec {
  const name = env.OTEL_TRACES_SAMPLER?.trim() || 'parentbased_always_on';
  if (!SAMPLERS.has(name)) throw new Error(`OTEL_TRACES_SAMPLER: "${name}" is not supported; use always_on, always_off, traceidratio or their parentbased_ forms`);
  if (!name.endsWith('traceidratio')) return { name: name as SamplerSpec['name'] };
  const raw = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  if (!raw) return { name: name as SamplerSpec['name'], ratio: 1 };
  const ratio = Number(raw);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) throw new Error(`OTEL_TRACES_SAMPLER_ARG: "${raw}" is not a ratio between 0 and 1`);
  return { name: name as SamplerSpec['name'], ratio };
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
