// Transparent traffic capture: NAT redirect rules that put the sidecar in the path of a pod's TCP traffic, so that
// an app is meshed without a change and cannot be reached around its sidecar. A pure core (options -> rule set ->
// iptables-restore or nft text) and a thin executor.
export { CaptureError, dryRunBackend, installCapture, ipFamilies, removeCapture, type Outcome } from './apply.js';
export { BACKEND_NAMES, type BackendName } from './backends.js';
export {
  CAPTURE_DEFAULTS,
  captureFlags,
  capturesInboundPort,
  parseCaptureSettings,
  type CaptureOptions,
  type CaptureSettings,
} from './options.js';
export { dryRunPlan, formatTransaction } from './plan.js';
export { captureRuleSet } from './rule-set.js';
export { describeCapture, familyNames } from './summary.js';
