const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[^:[\]\s]+):(\d{1,5})$/;

/** HOST:PORT or [IPv6]:PORT with a port from 1 to 65535: an address a pod dials. */
export function isHostPort(value: string): boolean {
  const port = Number(HOST_PORT.exec(value)?.[1] ?? 0);
  return port >= 1 && port <= 65535;
}
