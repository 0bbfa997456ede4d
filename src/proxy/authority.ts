// Host / :authority as routes and records read it. Pure.

/** The port of Host / :authority; 80 when it names none (the app speaks plain HTTP to this listener). */
export function portOf(authority: string): number {
  const port = /:(\d{1,5})$/.exec(authority.slice(authority.lastIndexOf(']') + 1))?.[1];
  return port === undefined ? 80 : Number(port);
}

/** Host / :authority without its port and trailing dot, lower case (as the policy compares hosts); IPv6 literals keep their brackets. */
export function hostOf(authority: string): string {
  const lower = authority.toLowerCase();
  if (lower.startsWith('[')) {
    const end = lower.indexOf(']');
    return end === -1 ? lower : lower.slice(0, end + 1);
  }
  const colon = lower.indexOf(':');
  const host = colon === -1 ? lower : lower.slice(0, colon);
  return host.length > 1 && host.endsWith('.') ? host.slice(0, -1) : host;
}
