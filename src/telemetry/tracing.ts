import type { TracingSettings } from './tracing-settings.js';
import type { Tracing } from './tracing-sdk.js';

export type { Tracing } from './tracing-sdk.js';
export { tracingSettingsFromEnv, type OtlpProtocol, type SamplerSpec, type TracingSettings } from './tracing-settings.js';

/** Starts tracing as `settings` say; the SDK is loaded here, on first use, and never when tracing is off. */
export async function startTracing(settings: TracingSettings, serviceName: string): Promise<Tracing> {
  const { startTracingSdk } = await import('./tracing-sdk.js');
  return startTracingSdk(settings, serviceName);
}
