import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * AWS IAM identity-policy evaluation, as the Secrets Manager emulator needs it to refuse what AWS
 * would refuse (ADR 0017). Follows the documented logic: an explicit Deny wins, otherwise an Allow
 * whose Action, Resource and every condition match, otherwise an implicit deny. A condition block
 * is an AND of operators and keys, an OR of a key's values; a key missing from the request fails
 * every operator except `Null`, `…IfExists` and `ForAllValues:` (which AWS treats as true).
 * An operator this file does not know throws: a policy using it must not pass by accident.
 */
export interface IamStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}

export interface IamPolicy {
  Version: string;
  Statement: IamStatement | IamStatement[];
}

/** Request context: single-valued keys are strings, multi-valued keys (aws:TagKeys) arrays. */
export type IamContext = Record<string, string | string[]>;

export interface IamRequest {
  action: string;
  resource: string;
  context: IamContext;
}

export type IamDecision = { allowed: true; statement: string } | { allowed: false; reason: 'explicit_deny' | 'implicit_deny'; statement?: string };

export function evaluatePolicy(policy: IamPolicy, request: IamRequest): IamDecision {
  let allowedBy: string | undefined;
  for (const [i, s] of list(policy.Statement).entries()) {
    if (!applies(s, request)) continue;
    const id = s.Sid ?? `#${i}`;
    if (s.Effect === 'Deny') return { allowed: false, reason: 'explicit_deny', statement: id };
    allowedBy ??= id;
  }
  return allowedBy === undefined ? { allowed: false, reason: 'implicit_deny' } : { allowed: true, statement: allowedBy };
}

function applies(s: IamStatement, request: IamRequest): boolean {
  if (s.Effect !== 'Allow' && s.Effect !== 'Deny') throw new Error(`Statement ${s.Sid ?? ''}: Effect must be Allow or Deny`);
  const actionMatches = s.Action !== undefined ? list(s.Action).some((p) => wildcard(p, request.action, true)) : !list(s.NotAction ?? []).some((p) => wildcard(p, request.action, true));
  if (!actionMatches) return false;
  const resourceMatches = s.Resource !== undefined ? list(s.Resource).some((p) => arnLike(p, request.resource)) : !list(s.NotResource ?? []).some((p) => arnLike(p, request.resource));
  if (!resourceMatches) return false;
  return Object.entries(s.Condition ?? {}).every(([operator, keys]) => Object.entries(keys).every(([key, expected]) => condition(operator, key, list(expected as never), request.context)));
}

const OPERATOR = /^(?:(ForAllValues|ForAnyValue):)?([A-Za-z]+?)(IfExists)?$/;

function condition(operator: string, key: string, expected: unknown[], context: IamContext): boolean {
  const match = OPERATOR.exec(operator);
  if (!match) throw new Error(`Unknown IAM condition operator ${operator}`);
  const [, set, base, ifExists] = match;
  const actual = lookup(context, key);
  if (base === 'Null') {
    if (set || ifExists) throw new Error(`Unknown IAM condition operator ${operator}`);
    const wantAbsent = String(expected[0]) === 'true';
    return wantAbsent === (actual === undefined);
  }
  const test = comparator(base, operator);
  const wanted = expected.map(String);
  if (actual === undefined) {
    if (ifExists) return true;
    // AWS: ForAllValues over a missing (empty) set is true; ForAnyValue is false.
    return set === 'ForAllValues';
  }
  const values = Array.isArray(actual) ? actual : [actual];
  if (set === 'ForAllValues') return values.every((v) => test(v, wanted));
  if (set === 'ForAnyValue') return values.some((v) => test(v, wanted));
  if (Array.isArray(actual)) throw new Error(`Condition key ${key} is multi-valued; use ForAllValues or ForAnyValue with ${operator}`);
  return test(actual, wanted);
}

type Comparator = (actual: string, wanted: string[]) => boolean;

function comparator(base: string, operator: string): Comparator {
  const any =
    (f: (a: string, w: string) => boolean): Comparator =>
    (a, ws) =>
      ws.some((w) => f(a, w));
  const none =
    (f: (a: string, w: string) => boolean): Comparator =>
    (a, ws) =>
      !ws.some((w) => f(a, w));
  const num = (f: (a: number, w: number) => boolean) => (a: string, w: string) => Number.isFinite(Number(a)) && Number.isFinite(Number(w)) && f(Number(a), Number(w));
  switch (base) {
    case 'StringEquals':
      return any((a, w) => a === w);
    case 'StringNotEquals':
      return none((a, w) => a === w);
    case 'StringEqualsIgnoreCase':
      return any((a, w) => a.toLowerCase() === w.toLowerCase());
    case 'StringNotEqualsIgnoreCase':
      return none((a, w) => a.toLowerCase() === w.toLowerCase());
    case 'StringLike':
      return any((a, w) => wildcard(w, a, false));
    case 'StringNotLike':
      return none((a, w) => wildcard(w, a, false));
    case 'ArnEquals':
    case 'ArnLike':
      return any((a, w) => arnLike(w, a));
    case 'ArnNotEquals':
    case 'ArnNotLike':
      return none((a, w) => arnLike(w, a));
    case 'Bool':
      return any((a, w) => a.toLowerCase() === w.toLowerCase());
    case 'NumericEquals':
      return any(num((a, w) => a === w));
    case 'NumericNotEquals':
      return none(num((a, w) => a === w));
    case 'NumericLessThan':
      return any(num((a, w) => a < w));
    case 'NumericLessThanEquals':
      return any(num((a, w) => a <= w));
    case 'NumericGreaterThan':
      return any(num((a, w) => a > w));
    case 'NumericGreaterThanEquals':
      return any(num((a, w) => a >= w));
    default:
      throw new Error(`Unknown IAM condition operator ${operator}`);
  }
}

/** Condition keys are case-insensitive; tag keys after the `/` keep their case, as AWS compares them. */
function lookup(context: IamContext, key: string): string | string[] | undefined {
  const slash = key.indexOf('/');
  const [prefix, rest] = slash < 0 ? [key, ''] : [key.slice(0, slash), key.slice(slash)];
  for (const [k, v] of Object.entries(context)) {
    const s = k.indexOf('/');
    const [kp, kr] = s < 0 ? [k, ''] : [k.slice(0, s), k.slice(s)];
    if (kp.toLowerCase() === prefix.toLowerCase() && kr === rest) return v;
  }
  return undefined;
}

/** `*` any run of characters, `?` one character; actions compare case-insensitively, values do not. */
function wildcard(pattern: string, value: string, ignoreCase: boolean): boolean {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`, ignoreCase ? 'is' : 's').test(value);
}

/** ARN matching: six colon-separated parts, each matched with wildcards; the resource part may hold colons. */
function arnLike(pattern: string, arn: string): boolean {
  if (pattern === '*') return true;
  const p = splitArn(pattern);
  const a = splitArn(arn);
  if (!p || !a) return false;
  return p.every((part, i) => wildcard(part, a[i], false));
}

function splitArn(arn: string): string[] | undefined {
  const parts = arn.split(':');
  if (parts.length < 6 || parts[0] !== 'arn') return undefined;
  return [...parts.slice(0, 5), parts.slice(5).join(':')];
}

function list<T>(x: T | T[]): T[] {
  return Array.isArray(x) ? x : [x];
}

/** keyward's services that have an IAM role, and the policy each role is created from. */
export const IAM_SERVICES = ['intake', 'validator', 'rotation', 'gateway'] as const;
export type IamServiceName = (typeof IAM_SERVICES)[number];

/** The committed policy document of a service: `deploy/iam/<service>.json`. */
export function deployedIamPolicy(service: IamServiceName): IamPolicy {
  return JSON.parse(readFileSync(join(repositoryRoot(), 'deploy/iam', `${service}.json`), 'utf8')) as IamPolicy;
}

function repositoryRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'deploy/iam'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('deploy/iam not found above the test helpers');
    dir = up;
  }
  return dir;
}
