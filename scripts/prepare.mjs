// npm's `prepare`: `npm ci` and `npm install` in the checkout build it (dist/ is what bin/meshward.js runs).
//
// `npx meshward …` run inside the checkout makes npm install this directory into its npx cache the first time, and
// npm runs `prepare` for that install too (npm_command=exec). A build then would delete and rewrite dist/bundle/
// under meshward processes already running from it: the test suite's demo test runs `npx meshward demo` beside
// other tests, whose CLI processes failed with "Cannot find module …/dist/bundle/chunk-….js" when they loaded a
// chunk during that rebuild. npx runs the checkout's dist/ as it is.
import { execSync } from 'node:child_process';

if (process.env.npm_command !== 'exec') execSync('npm run build', { stdio: 'inherit' });
