// Checks an Envoy config (YAML, as Envoy reads it) against the OFFICIAL Envoy protos shipped by @grpc/grpc-js-xds:
// every key must be a field of its message (Envoy refuses unknown fields), every enum a value of its enum, every
// typed_config's "@type" a message that exists, at most one member of a oneof. No Envoy binary is needed, and a
// typo in a deploy file fails a test instead of an Envoy start.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { OFFICIAL_PROTO_DIRS, officialProtoRoot } from './official-protos.js';

const root = officialProtoRoot();

/** Loads every .proto of the package that defines `typeName` (e.g. envoy.extensions.filters.http.router.v3.Router). */
function lookup(typeName: string): protobuf.Type | undefined {
  const found = () => {
    try {
      return root.lookupType(typeName);
    } catch {
      return undefined;
    }
  };
  const loaded = found();
  if (loaded) return loaded;
  const dir = typeName.split('.').slice(0, -1).join('/');
  const base = OFFICIAL_PROTO_DIRS.find((d) => existsSync(join(d, dir)));
  if (!base) return undefined;
  for (const file of readdirSync(join(base, dir)).filter((f) => f.endsWith('.proto'))) root.loadSync(`${dir}/${file}`, { keepCase: true });
  root.resolveAll();
  return found();
}

const SCALAR_CHECKS: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  bytes: (v) => typeof v === 'string',
  bool: (v) => typeof v === 'boolean',
  double: (v) => typeof v === 'number',
  float: (v) => typeof v === 'number',
};
const isInteger = (v: unknown) => (typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v));

/** Well-known types written in their JSON form: a string, a number, anything. */
const WELL_KNOWN: Record<string, (v: unknown) => boolean> = {
  '.google.protobuf.Duration': (v) => typeof v === 'string' && /^-?\d+(\.\d+)?s$/.test(v),
  '.google.protobuf.Timestamp': (v) => typeof v === 'string',
  '.google.protobuf.Struct': (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  '.google.protobuf.Value': () => true,
  '.google.protobuf.ListValue': (v) => Array.isArray(v),
  '.google.protobuf.BoolValue': (v) => typeof v === 'boolean',
  '.google.protobuf.StringValue': (v) => typeof v === 'string',
  '.google.protobuf.BytesValue': (v) => typeof v === 'string',
  '.google.protobuf.DoubleValue': (v) => typeof v === 'number',
  '.google.protobuf.FloatValue': (v) => typeof v === 'number',
  '.google.protobuf.UInt32Value': isInteger,
  '.google.protobuf.Int32Value': isInteger,
  '.google.protobuf.UInt64Value': isInteger,
  '.google.protobuf.Int64Value': isInteger,
};

function checkMessage(value: unknown, type: protobuf.Type, path: string, problems: string[]): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push(`${path}: must be a mapping (a ${type.name})`);
    return;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (type.fullName === '.google.protobuf.Any') {
    const url = (value as Record<string, unknown>)['@type'];
    const packed = typeof url === 'string' ? lookup(url.slice(url.lastIndexOf('/') + 1)) : undefined;
    if (!packed) problems.push(`${path}: "@type" ${JSON.stringify(url)} is not a message of the Envoy API`);
    else checkMessage(Object.fromEntries(entries.filter(([k]) => k !== '@type')), packed, path, problems);
    return;
  }
  for (const [key, item] of entries) {
    const field = type.fields[key] ?? type.fieldsArray.find((f) => protobuf.util.camelCase(f.name) === key);
    if (!field) {
      problems.push(`${path}.${key}: ${type.name} has no field "${key}"`);
      continue;
    }
    field.resolve();
    const at = `${path}.${key}`;
    if (field.map) {
      if (typeof item !== 'object' || item === null) problems.push(`${at}: must be a mapping`);
      else for (const [k, v] of Object.entries(item)) checkValue(v, field, `${at}.${k}`, problems);
    } else if (field.repeated) {
      if (!Array.isArray(item)) problems.push(`${at}: must be a list`);
      else item.forEach((v, i) => checkValue(v, field, `${at}[${i}]`, problems));
    } else {
      checkValue(item, field, at, problems);
    }
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.oneof.filter((name) => name in (value as object));
    if (set.length > 1) problems.push(`${path}: ${set.join(' and ')} are one choice (${oneof.name}): give one`);
  }
}

function checkValue(value: unknown, field: protobuf.Field, path: string, problems: string[]): void {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    if (!(typeof value === 'string' && value in resolved.values) && !isInteger(value)) {
      problems.push(`${path}: ${JSON.stringify(value)} is not one of ${Object.keys(resolved.values).join(', ')}`);
    }
  } else if (resolved instanceof protobuf.Type) {
    const wellKnown = WELL_KNOWN[resolved.fullName];
    if (wellKnown) {
      if (!wellKnown(value)) problems.push(`${path}: ${JSON.stringify(value)} is not a ${resolved.name}`);
    } else {
      checkMessage(value, resolved, path, problems);
    }
  } else {
    const check = SCALAR_CHECKS[field.type] ?? isInteger;
    if (!check(value)) problems.push(`${path}: ${JSON.stringify(value)} is not a ${field.type}`);
  }
}

/** What Envoy would refuse in `config`, parsed YAML of the message `typeName` (a bootstrap unless said); empty when none. */
export function envoyConfigProblems(config: unknown, typeName = 'envoy.config.bootstrap.v3.Bootstrap'): string[] {
  const type = lookup(typeName);
  if (!type) throw new Error(`${typeName} is not a message of the Envoy API`);
  const problems: string[] = [];
  checkMessage(config, type, type.name.charAt(0).toLowerCase() + type.name.slice(1), problems);
  return problems;
}
