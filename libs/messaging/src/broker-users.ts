import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { BrokerRole, PUBLISHERS, Subscriber, SUBSCRIPTIONS } from '@keyward/contracts';
import { connect } from 'amqplib';
import { declareTopology, escapeRegExp, NotificationsRetention, NOTIFICATIONS_RETENTION, QuorumUnavailableError, topologyPolicies, TopologyNames } from './topology';

export interface BrokerUser {
  role: BrokerRole;
  username: string;
  password: string;
}

/** The queues a role consumes: the workers their own, the integration the notifications queue. */
function ownQueue(role: BrokerRole): Subscriber | undefined {
  if (role === 'integration') return 'notifications';
  return role in SUBSCRIPTIONS ? (role as Subscriber) : undefined;
}

const anyOf = (alternatives: string[]): string => (alternatives.length === 0 ? '^$' : `^(${alternatives.join('|')})$`);

/**
 * RabbitMQ permissions of one role (ADR 0015). Configure and read: its own queues (and a worker's
 * own redelivery exchange, `<prefix>.<subscriber>.redelivery`, ADR 0013). Write: the events
 * exchange — topic permissions then allow only the routing keys it owns — and a worker's own
 * queues and redelivery exchange. Nobody may write to the default exchange (it reaches every
 * queue by name), to the dead-letter exchange or to another subscriber's redelivery exchange.
 */
function rolePermissions(names: TopologyNames, role: BrokerRole) {
  const p = escapeRegExp(names.prefix);
  const queue = ownQueue(role);
  const worker = queue !== undefined && queue !== 'notifications';
  const own = queue ? `${p}\\.${queue}(\\..+)?` : undefined;
  return {
    configure: worker ? anyOf([own!]) : '^$',
    write: anyOf([`${p}\\.events`, ...(worker ? [own!] : [])]),
    read: own ? anyOf([own]) : '^$',
    topics: [{ exchange: names.exchange, write: anyOf(PUBLISHERS[role].map(escapeRegExp)), read: '^$' }],
  };
}

/** RabbitMQ's default password hash (rabbit_password_hashing_sha256): salt, then SHA-256 of salt and password. */
function rabbitPasswordHash(password: string): string {
  const salt = randomBytes(4);
  return Buffer.concat([
    salt,
    createHash('sha256')
      .update(Buffer.concat([salt, Buffer.from(password, 'utf8')]))
      .digest(),
  ]).toString('base64');
}

/**
 * Users, permissions, topic permissions and queue policies of one prefix as a RabbitMQ
 * definitions document: imported in one `rabbitmqctl import_definitions` call, idempotently
 * (users and permissions are replaced, nothing else is touched). `marker` is an exchange the
 * import creates last, so the caller knows when the asynchronous import has finished.
 */
function brokerDefinitions(options: { vhost: string; prefix: string; users: BrokerUser[]; marker: string; retention?: NotificationsRetention }) {
  const names = new TopologyNames(options.prefix);
  return {
    vhosts: [{ name: options.vhost }],
    users: options.users.map((u) => ({ name: u.username, password_hash: rabbitPasswordHash(u.password), hashing_algorithm: 'rabbit_password_hashing_sha256', tags: [] })),
    permissions: options.users.map((u) => {
      const { configure, write, read } = rolePermissions(names, u.role);
      return { user: u.username, vhost: options.vhost, configure, write, read };
    }),
    topic_permissions: options.users.flatMap((u) => rolePermissions(names, u.role).topics.map((t) => ({ user: u.username, vhost: options.vhost, exchange: t.exchange, write: t.write, read: t.read }))),
    policies: topologyPolicies(names, options.retention ?? NOTIFICATIONS_RETENTION).map((policy) => ({
      vhost: options.vhost,
      name: policy.name,
      pattern: policy.pattern,
      'apply-to': 'queues',
      priority: policy.priority,
      definition: policy.definition,
    })),
    exchanges: [{ name: options.marker, vhost: options.vhost, type: 'fanout', durable: false, auto_delete: false, internal: true, arguments: {} }],
  };
}

/** Runs `rabbitmqctl import_definitions` (or the command given, e.g. through kubectl exec -i) with the document on stdin. */
function importDefinitions(command: string[], definitions: object): Promise<string> {
  return runRabbitmqctl(command, ['import_definitions', '--format', 'json'], JSON.stringify(definitions));
}

/**
 * The same document through the management API (`POST /api/definitions`), for brokers without
 * shell access such as Amazon MQ. Not exercised by the tests: the shared test broker runs without
 * the management plugin.
 */
async function postDefinitions(managementUrl: string, definitions: object): Promise<void> {
  const url = new URL(managementUrl);
  const auth = Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64');
  url.username = '';
  url.password = '';
  url.pathname = `${url.pathname.replace(/\/$/, '')}/api/definitions`;
  const response = await fetch(url, { method: 'POST', headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' }, body: JSON.stringify(definitions) });
  if (!response.ok) throw new Error(`The management API refused the definitions: HTTP ${response.status}`);
}

export function runRabbitmqctl(command: string[], args: string[], stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], [...command.slice(1), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (out += String(d)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command.join(' ')} ${args[0]} exited with ${code}: ${out.trim().slice(0, 500)}`))));
    child.stdin.end(stdin ?? '');
  });
}

/** Reads a service's AMQP URL into its broker user (the password never leaves this process except hashed). */
export function userFromUrl(role: BrokerRole, url: string): BrokerUser & { vhost: string } {
  const u = new URL(url);
  if (!u.username || !u.password) throw new Error(`The AMQP URL for ${role} names no user and password`);
  const vhost = u.pathname.length > 1 ? decodeURIComponent(u.pathname.slice(1)) : '/';
  return { role, username: decodeURIComponent(u.username), password: decodeURIComponent(u.password), vhost };
}

export interface BrokerSetupOptions {
  /** An administrator's AMQP URL for the vhost: declares the topology. */
  adminUrl: string;
  vhost: string;
  prefix: string;
  users: BrokerUser[];
  /** How definitions reach the broker: rabbitmqctl, or the management API (Amazon MQ has no rabbitmqctl). */
  rabbitmqctl: string[];
  managementUrl?: string;
  retention?: NotificationsRetention;
  timeoutMs?: number;
}

/**
 * `npm run broker:setup`: users, permissions and policies imported through rabbitmqctl, then the
 * topology declared as the administrator (services with their own users may not declare it).
 * Safe to run again after every release.
 */
export async function setupBroker(options: BrokerSetupOptions): Promise<{ kept: string[]; queueType: string }> {
  const marker = `${options.prefix}.setup.${randomBytes(6).toString('hex')}`;
  const definitions = brokerDefinitions({ vhost: options.vhost, prefix: options.prefix, users: options.users, marker, retention: options.retention });
  if (options.managementUrl) await postDefinitions(options.managementUrl, definitions);
  else await importDefinitions(options.rabbitmqctl, definitions);

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const admin = await connect(options.adminUrl);
  try {
    // The import runs asynchronously; its marker exchange is created after users, permissions and policies.
    for (;;) {
      const channel = await admin.createChannel();
      channel.on('error', () => undefined);
      try {
        await channel.checkExchange(marker);
        await channel.deleteExchange(marker);
        await channel.close();
        break;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`The broker did not finish importing the definitions in time (${(error as Error).message})`, { cause: error });
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const names = new TopologyNames(options.prefix);
    let report;
    try {
      report = await declareTopology(admin, names, 'quorum', options.retention);
    } catch (error) {
      if (!(error instanceof QuorumUnavailableError)) throw error;
      report = await declareTopology(admin, names, 'classic', options.retention);
    }
    return { kept: report.kept, queueType: report.classicKept.length > 0 ? 'classic' : report.queueType };
  } finally {
    await admin.close().catch(() => undefined);
  }
}
