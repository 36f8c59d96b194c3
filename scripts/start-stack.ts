import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { connect } from 'amqplib';
import { ConfigError, DEFAULT_PORTS, loadConfig } from '@keyward/config';
import { describeAmqpUrl } from '@keyward/messaging';
import { DatabaseUnreachableError, describeDatabaseUrl, migrate } from '@keyward/persistence';
import { resolveMasterKeyring } from '@keyward/secrets';

/**
 * `npm start`: the whole system on one machine for development — every service as its own
 * process, each line prefixed with its name, on the development defaults. Ctrl-C stops it all.
 */
const SERVICES = ['pleo-sandbox', 'intake', 'validator', 'rotation', 'monitor', 'gateway'] as const;
const COLORS = ['\x1b[35m', '\x1b[36m', '\x1b[33m', '\x1b[32m', '\x1b[34m', '\x1b[31m'];
const RESET = '\x1b[0m';
const root = join(__dirname, '..', '..');

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function checkBroker(url: string): Promise<void> {
  try {
    const connection = await connect(url, { timeout: 4_000 });
    await connection.close();
  } catch (error) {
    throw new Error(
      `RabbitMQ is not reachable at ${describeAmqpUrl(url)} (${(error as Error).message}).\n` +
        '  Start it with: docker compose up -d rabbitmq   (or: rabbitmq-server -detached)\n' +
        '  or point AMQP_URL at a running broker.',
      { cause: error },
    );
  }
}

async function waitReady(name: string, port: number, deadline: number): Promise<boolean> {
  const path = name === 'pleo-sandbox' ? '/health/live' : '/health/ready';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      if (res.ok) return true;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

async function main(): Promise<void> {
  const config = loadConfig('tool');
  if (config.nodeEnv === 'production') throw new Error('npm start is the development stack; deploy services one by one in production (see deploy/).');
  await checkBroker(config.amqp.url);
  const applied = await migrate(config.database.url);
  say(`Database ${describeDatabaseUrl(config.database.url)}: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}`);

  // Creates the git-ignored development master key once, before several services race for it.
  if (config.secrets.backend === 'local') resolveMasterKeyring(config);
  const env = { ...process.env };
  const children = new Map<string, ChildProcess>();
  let stopping = false;

  const stopAll = (code: number) => {
    if (stopping) return;
    stopping = true;
    say('\nStopping keyward…');
    for (const child of children.values()) child.kill('SIGTERM');
    const force = setTimeout(() => {
      for (const child of children.values()) child.kill('SIGKILL');
    }, 15_000);
    void Promise.all([...children.values()].map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r))))).then(() => {
      clearTimeout(force);
      process.exit(code);
    });
  };
  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));

  SERVICES.forEach((name, i) => {
    const child = spawn(process.execPath, [join(root, 'dist', 'apps', name, 'main.js')], {
      env: { ...env, PORT: String(DEFAULT_PORTS[name]) },
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const prefix = `${COLORS[i]}${name.padEnd(12)}${RESET} | `;
    for (const stream of [child.stdout, child.stderr]) {
      let buffer = '';
      stream.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8');
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const line of lines) if (line) process.stdout.write(prefix + line + '\n');
      });
    }
    child.on('exit', (code, signal) => {
      children.delete(name);
      if (!stopping) {
        say(`${prefix}exited (${signal ?? code}); stopping the stack`);
        stopAll(1);
      }
    });
    children.set(name, child);
  });

  const deadline = Date.now() + 60_000;
  const ready = await Promise.all(SERVICES.map((name) => waitReady(name, DEFAULT_PORTS[name], deadline)));
  if (stopping) return;
  const notReady = SERVICES.filter((_, i) => !ready[i]);
  if (notReady.length) {
    say(`Not ready after 60 s: ${notReady.join(', ')} — see their log lines above.`);
    stopAll(1);
    return;
  }
  const token = config.auth.serviceTokens.length && !process.env.KEYWARD_SERVICE_TOKENS ? 'dev-service-token' : '<your service token>';
  say(`
keyward is running (development defaults; Ctrl-C stops everything)
  intake      http://localhost:${DEFAULT_PORTS.intake}   (API docs: /docs)
  validator   http://localhost:${DEFAULT_PORTS.validator}/health/ready
  rotation    http://localhost:${DEFAULT_PORTS.rotation}/health/ready
  monitor     http://localhost:${DEFAULT_PORTS.monitor}/health/ready
  gateway     http://localhost:${DEFAULT_PORTS.gateway}/v1/tenants/{tenantId}/pleo/api/{Pleo path}
  pleo sandbox http://localhost:${DEFAULT_PORTS['pleo-sandbox']}   (stands in for Pleo)
  service token: ${token}

Try it — issue a sandbox key, submit it for tenant "acme", read the connection:
  KEY=$(curl -s -X POST localhost:4010/_sandbox/keys -H 'content-type: application/json' -d '{}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).apiKey')
  curl -s -X PUT localhost:3000/v1/tenants/acme/pleo/key -H 'Authorization: Bearer ${token}' -H 'content-type: application/json' -H 'Prefer: wait=10' -d "{\\"apiKey\\":\\"$KEY\\"}"; echo
  curl -s localhost:3000/v1/tenants/acme/pleo/connection -H 'Authorization: Bearer ${token}'; echo
Then call Pleo as "acme" through the gateway (keyward attaches the key):
  curl -s localhost:${DEFAULT_PORTS.gateway}/v1/tenants/acme/pleo/api/v1/employees -H 'Authorization: Bearer ${token}'; echo
`);
}

main().catch((error: unknown) => {
  const known = error instanceof ConfigError || error instanceof DatabaseUnreachableError || /not reachable/.test(String((error as Error)?.message));
  process.stderr.write(`keyward: ${known ? (error as Error).message : String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
