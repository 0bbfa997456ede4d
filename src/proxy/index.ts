// The data plane: listeners, forwarding and the sidecar that wires them together.
export { startSidecar, type Sidecar } from './sidecar.js';
export { optimiseSooner } from './tier-up.js';
