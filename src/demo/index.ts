// `meshward demo`: the real CA and sidecars, in one process, with two tiny apps; see run-demo.ts.
export { runDemo, type DemoOptions } from './run-demo.js';
