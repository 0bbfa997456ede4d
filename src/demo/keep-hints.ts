import { join } from 'node:path';
import { SVID_TTL, WEB_ID, type RunningCa, type RunningOrders, type RunningWeb } from './mesh.js';

// What `meshward demo --keep` prints once the checks pass: where everything listens and commands to paste.

export function keepHints(dir: string, ca: RunningCa, orders: RunningOrders, web: RunningWeb, apiKey: string): string {
  const edge = `https://localhost:${web.ingress.slice(web.ingress.lastIndexOf(':') + 1)}`;
  const outbound = `http://${web.outbound}`;
  return `
The mesh keeps running; Ctrl-C stops it and removes ${dir}.

  CA (gRPC, TLS)   ${ca.address}   bundle ${ca.bundleFile}
  orders sidecar   inbound (mTLS) ${orders.inbound}   admin http://${orders.admin}/certs  http://${orders.admin}/readyz
  web sidecar      outbound ${outbound}   admin http://${web.admin}/certs  http://${web.admin}/readyz
                   the edge (TLS, for clients outside the mesh): ${edge}   API key ${apiKey}
                   web's SVID on the SPIFFE Workload API: ${web.workloadApi}
  orders app       ${orders.app} (plain HTTP, loopback)
  files            ${orders.configFile}  ${web.configFile}  ${orders.policyFile}
                   audit ${orders.auditFile}   logs ${join(dir, 'meshward.log')}

Try (as web's app, through web's sidecar):
  curl -i -H 'Host: orders' ${outbound}/api/orders/1
  curl -i -X POST -H 'Host: orders' ${outbound}/api/orders
  curl -i -H 'Host: orders' -H 'x-forwarded-client-cert: URI=${WEB_ID.replace(/web$/, 'admin')}' ${outbound}/api/orders/2
  curl -s http://${orders.admin}/certs        # the serial changes every few seconds: SVIDs live ${SVID_TTL}
  curl -k https://${orders.inbound}/api/orders/1    # no client certificate: refused at the handshake
  npx meshward audit verify ${orders.auditFile}

Try (as a client outside the mesh, through the edge: TLS, an API key, the OpenAPI document, masking):
  curl -i --cacert ${ca.bundleFile} -H 'x-api-key: ${apiKey}' ${edge}/api/orders/1
  curl -i --cacert ${ca.bundleFile} ${edge}/api/orders/1    # no key: 401
  curl -i --cacert ${ca.bundleFile} -H 'x-api-key: ${apiKey}' -H 'content-type: application/json' -d '{"item":"x","quantity":1,"isAdmin":true}' ${edge}/api/orders
`;
}
