import { describe, expect, it } from 'vitest';
import { tracingSettingsFromEnv } from '../../src/telemetry/tracing-settings.js';
import { samplerOf } from '../../src/telemetry/tracing-sdk.js';

// When the OTEL_* variables turn tracing on, and what they may say.

const ENDPOINT = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };

describe('tracingSettingsFromEnv', () => {
  it('is off with no OTEL_* variable at all', () => {
    expect(tracingSettingsFromEnv({})).toBeUndefined();
  });

  it('is on with an endpoint, or with OTEL_TRACES_EXPORTER=otlp (the exporter then uses its default endpoint)', () => {
    expect(tracingSettingsFromEnv(ENDPOINT)?.protocol).toBe('http/protobuf');
    expect(tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toBeDefined();
    expect(tracingSettingsFromEnv({ OTEL_TRACES_EXPORTER: 'otlp' })).toBeDefined();
  });

  it('is off when told so, whatever else is set', () => {
    expect(tracingSettingsFromEnv({ ...ENDPOINT, OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
    expect(tracingSettingsFromEnv({ ...ENDPOINT, OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(tracingSettingsFromEnv({ ...ENDPOINT, OTEL_TRACES_EXPORTER: ' ' })).toBeDefined();
  });

  it('takes the traces-specific protocol over the general one', () => {
    expect(tracingSettingsFromEnv({ ...ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' })?.protocol).toBe('http/json');
  });

  it('reads the sampler and the batch settings', () => {
    const settings = tracingSettingsFromEnv({ ...ENDPOINT, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25', OTEL_BSP_SCHEDULE_DELAY: '200' });
    expect(settings?.sampler).toEqual({ name: 'parentbased_traceidratio', ratio: 0.25 });
    expect(settings?.batch).toEqual({ scheduledDelayMillis: 200 });
  });

  it.each([
    [{ OTEL_TRACES_EXPORTER: 'zipkin' }, 'OTEL_TRACES_EXPORTER: "zipkin" is not supported'],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported'],
    [{ OTEL_TRACES_SAMPLER: 'xray' }, 'OTEL_TRACES_SAMPLER: "xray" is not supported'],
    [{ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }, 'OTEL_TRACES_SAMPLER_ARG: "2" is not a ratio'],
    [{ OTEL_BSP_MAX_QUEUE_SIZE: '-1' }, 'OTEL_BSP_MAX_QUEUE_SIZE: "-1" is not a positive integer'],
  ])('refuses %o', (env, message) => {
    expect(() => tracingSettingsFromEnv({ ...ENDPOINT, ...env })).toThrow(message);
  });
});

describe('samplerOf', () => {
  it('builds the sampler the settings name, with its ratio', () => {
    expect(samplerOf({ name: 'parentbased_traceidratio', ratio: 0.25 }).toString()).toContain('0.25');
    expect(samplerOf({ name: 'always_off' }).toString()).toBe('AlwaysOffSampler');
  });
});
