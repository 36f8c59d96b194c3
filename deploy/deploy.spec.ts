import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Script } from 'node:vm';
import { parse, parseAllDocuments } from 'yaml';
import { DEFAULT_PORTS, loadConfig, SERVICE_NAMES, ServiceName } from '@keyward/config';
import { SUBSCRIPTIONS, Subscriber } from '@keyward/contracts';
import { TopologyNames } from '@keyward/messaging';
import { Metrics } from '@keyward/observability';

/**
 * Offline, structural checks of everything an operator runs: the image, the compose stack, the
 * Kustomize overlays (rendered here with the small subset of Kustomize they use, and compared with
 * `kubectl kustomize` when kubectl is installed) and the Grafana dashboard.
 */

type Obj = Record<string, any>;

const ROOT = resolve(__dirname, '..');
const K8S = join(ROOT, 'deploy/k8s');
const SERVICES = ['intake', 'validator', 'rotation', 'monitor', 'gateway'] as const;
type Service = (typeof SERVICES)[number];
const WORKERS = ['validator', 'rotation', 'monitor'] as const satisfies readonly (Service & Subscriber)[];
const IRSA_SERVICES: readonly Service[] = ['intake', 'validator', 'rotation', 'gateway'];
/** The services that take HTTP traffic, each behind a Service and an HPA. */
const HTTP_SERVICES = ['intake', 'gateway'] as const satisfies readonly Service[];
const OVERLAYS = { staging: 'keyward-staging', production: 'keyward' } as const;

const text = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** Every variable the configuration reads, taken from the source so the list cannot drift. */
const CONFIG_VARIABLES: ReadonlySet<string> = (() => {
  const source = text('libs/config/src/keyward-config.ts');
  const names = [...source.matchAll(/\.(?:raw|devDefault|string|optional|int|number|bool|oneOf|url)\(\s*'([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1]);
  return new Set(names);
})();
/** Read by the AWS SDK's credential chain, not by keyward's configuration (compose's dummy creds). */
const AWS_SDK_VARIABLES = new Set(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);
/** Read straight from process.env where a process starts (the listen address). */
const PROCESS_VARIABLES: ReadonlySet<string> = new Set(
  ['libs/bootstrap/src/start-service.ts', 'apps/pleo-sandbox/main.ts']
    .filter((path) => existsSync(join(ROOT, path)))
    .flatMap((path) => [...text(path).matchAll(/process\.env\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1])),
);

// ---------------------------------------------------------------------------------------------
// A minimal Kustomize: resources (files, directories), configMapGenerator (literals, merge),
// images, namespace and inline JSON 6902 patches with a kind/name target. Anything else throws,
// so the overlays cannot quietly use a feature these checks would not see.

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'ClusterSecretStore', 'CustomResourceDefinition']);

function loadYaml(path: string): Obj[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((doc) => {
      if (doc.errors.length) throw new Error(`${path}: ${doc.errors[0].message}`);
      return doc.toJS() as Obj;
    })
    .filter((doc) => doc !== null && doc !== undefined);
}

function renderKustomization(dir: string): Obj[] {
  const k = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Obj;
  const supported = ['apiVersion', 'kind', 'namespace', 'resources', 'configMapGenerator', 'images', 'patches'];
  const unsupported = Object.keys(k).filter((key) => !supported.includes(key));
  if (unsupported.length) throw new Error(`${dir}: kustomization uses ${unsupported.join(', ')}, which deploy.spec.ts does not render`);

  const out: Obj[] = [];
  for (const entry of (k.resources ?? []) as string[]) {
    const path = resolve(dir, entry);
    out.push(...(statSync(path).isDirectory() ? renderKustomization(path) : loadYaml(path)));
  }
  for (const generator of (k.configMapGenerator ?? []) as Obj[]) {
    const data = Object.fromEntries(((generator.literals ?? []) as string[]).map((literal) => [literal.slice(0, literal.indexOf('=')), literal.slice(literal.indexOf('=') + 1)]));
    if (generator.behavior === 'merge' || generator.behavior === 'replace') {
      const existing = out.find((o) => o.kind === 'ConfigMap' && o.metadata.name === generator.name);
      if (!existing) throw new Error(`${dir}: configMapGenerator ${generator.name} merges into a ConfigMap that does not exist`);
      existing.data = generator.behavior === 'merge' ? { ...existing.data, ...data } : data;
    } else {
      const labels = generator.options?.labels;
      out.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: generator.name, ...(labels ? { labels } : {}) }, data });
    }
  }
  for (const patch of (k.patches ?? []) as Obj[]) {
    const { kind, name } = patch.target ?? {};
    if (!kind || !name || typeof patch.patch !== 'string') throw new Error(`${dir}: only inline JSON 6902 patches with a kind/name target are supported`);
    const targets = out.filter((o) => o.kind === kind && o.metadata.name === name);
    if (targets.length === 0) throw new Error(`${dir}: patch target ${kind}/${name} does not exist`);
    for (const target of targets) for (const op of parse(patch.patch) as Obj[]) applyJsonPatch(target, op);
  }
  for (const image of (k.images ?? []) as Obj[]) {
    for (const o of out) {
      for (const c of [...(o.spec?.template?.spec?.containers ?? []), ...(o.spec?.template?.spec?.initContainers ?? [])]) {
        if (imageName(c.image) === image.name) c.image = `${image.newName ?? image.name}${image.newTag ? `:${image.newTag}` : ''}`;
      }
    }
  }
  if (k.namespace) {
    for (const o of out) {
      if (o.kind === 'Namespace') o.metadata.name = k.namespace;
      else if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
    }
  }
  return out;
}

function imageName(image: string): string {
  const lastSlash = image.lastIndexOf('/');
  const colon = image.indexOf(':', lastSlash + 1);
  return colon === -1 ? image : image.slice(0, colon);
}

function applyJsonPatch(doc: Obj, op: Obj): void {
  const parts = (op.path as string)
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = parts.pop()!;
  let parent: Obj = doc;
  for (const part of parts) {
    parent = parent[part];
    if (parent === undefined) throw new Error(`JSON patch path ${op.path} does not exist`);
  }
  if (op.op === 'add') {
    if (Array.isArray(parent)) parent.splice(last === '-' ? parent.length : Number(last), 0, op.value);
    else parent[last] = op.value;
  } else if (op.op === 'replace') {
    if (!(last in parent)) throw new Error(`JSON patch replaces ${op.path}, which does not exist`);
    parent[last] = op.value;
  } else if (op.op === 'remove') {
    if (!(last in parent)) throw new Error(`JSON patch removes ${op.path}, which does not exist`);
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else {
    throw new Error(`JSON patch op ${op.op} is not supported by deploy.spec.ts`);
  }
}

function yamlFilesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return yamlFilesUnder(path);
    return /\.ya?ml$/.test(entry) ? [path] : [];
  });
}

function onPath(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const find = (objects: Obj[], kind: string, name: string): Obj | undefined => objects.find((o) => o.kind === kind && o.metadata.name === name);
const get = (objects: Obj[], kind: string, name: string): Obj => {
  const found = find(objects, kind, name);
  if (!found) throw new Error(`${kind}/${name} is missing`);
  return found;
};
const matches = (selector: Obj | undefined, labels: Obj): boolean => Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);

/** Placeholder secret values that satisfy the production configuration rules. */
function placeholderSecret(key: string): string {
  if (key.endsWith('database-url')) return 'postgres://keyward_svc:pw@db.internal:5432/keyward';
  if (key.endsWith('amqp-url')) return 'amqps://keyward_svc:pw@mq.internal:5671';
  if (key === 'service-tokens') return `integration=sha256:${'ab'.repeat(32)}`;
  if (key === 'fingerprint-pepper') return Buffer.alloc(32, 7).toString('base64');
  if (key === 'alert-webhook-secret') return `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
  throw new Error(`no placeholder for secret key ${key}`);
}

// ---------------------------------------------------------------------------------------------

describe('Dockerfile', () => {
  const dockerfile = text('Dockerfile').replace(/\\\n/g, ' ');
  const lines = dockerfile
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args = Object.fromEntries(lines.filter((l) => /^ARG \w+=/.test(l)).map((l) => l.slice(4).split('=') as [string, string]));
  const stages = lines.reduce<string[][]>((acc, line) => (line.startsWith('FROM ') ? [...acc, [line]] : (acc[acc.length - 1]?.push(line), acc)), []);
  const runtime = stages[stages.length - 1];
  const stageNamed = (name: string) => stages.find((s) => new RegExp(`\\bAS ${name}$`, 'i').test(s[0]));

  it('builds on Node 24 in every stage', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const [from] of stages) {
      const image = from.split(/\s+/)[1].replace(/^\$\{(\w+)\}$/, (_, name: string) => args[name] ?? '');
      expect(image).toMatch(/^node:24(-|$)/);
    }
  });

  it('compiles once in a build stage and ships only production dependencies', () => {
    const build = lines.join('\n');
    expect(build).toMatch(/RUN .*npm ci\b(?!.*--omit=dev)/);
    expect(build).toMatch(/RUN .*npm run build/);
    const copiedStages = runtime.filter((l) => l.startsWith('COPY --from=')).map((l) => l.match(/--from=(\S+)/)![1]);
    const modulesFrom = runtime.find((l) => /COPY --from=\S+ \S*node_modules/.test(l))!.match(/--from=(\S+)/)![1];
    expect(stageNamed(modulesFrom)!.join('\n')).toMatch(/npm ci --omit=dev/);
    expect(copiedStages).toContain('build');
    expect(runtime.join('\n')).not.toMatch(/npm (ci|install)/);
  });

  it('runs as a non-root user with NODE_ENV=production, stops on SIGTERM and checks /health/live with node', () => {
    const user = runtime.filter((l) => l.startsWith('USER ')).pop();
    expect(user).toBeDefined();
    expect(user!.slice(5).split(':')[0]).not.toMatch(/^(root|0)$/);
    expect(runtime).toContainEqual(expect.stringMatching(/^ENV NODE_ENV=production$/));
    expect(runtime).toContain('STOPSIGNAL SIGTERM');
    const healthcheck = runtime.find((l) => l.startsWith('HEALTHCHECK'))!;
    // Exec form must be valid JSON, or Docker silently runs it through a shell instead.
    const exec = JSON.parse(healthcheck.slice(healthcheck.indexOf('CMD ') + 4)) as string[];
    expect(exec.slice(0, 2)).toEqual(['node', '-e']);
    expect(() => new Script(exec[2])).not.toThrow();
    expect(healthcheck).toContain('/health/live');
    expect(healthcheck).not.toMatch(/curl|wget/);
    expect(runtime).toContain('ENTRYPOINT ["node"]');
    expect(runtime.find((l) => l.startsWith('CMD '))).toMatch(/dist\/apps\/[a-z-]+\/main\.js/);
  });

  it('keeps secrets, dependencies and build output out of the build context', () => {
    const ignored = text('.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    for (const entry of ['.git', 'node_modules', 'dist', '.env', '.keyward']) expect(ignored).toContain(entry);
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(text('docker-compose.yml'), { merge: true }) as Obj;
  const services = compose.services as Record<string, Obj>;
  const keywardServices = Object.entries(services).filter(([, s]) => s.image === 'keyward:local');

  it('runs the infrastructure, the one-shot migration, the sandbox and every service', () => {
    expect(Object.keys(services).sort()).toEqual(['gateway', 'intake', 'migrate', 'monitor', 'pleo-sandbox', 'postgres', 'rabbitmq', 'rotation', 'secrets-manager', 'validator'].sort());
    // The versions the test suite runs against and its pg_dump can dump (ADR 0025).
    expect(services.postgres.image).toBe('postgres:15-bookworm');
    expect(services.rabbitmq.image).toBe('rabbitmq:3.10-management');
    expect(services.gateway.command).toEqual(['dist/apps/gateway/main.js']);
    expect(services['secrets-manager'].image).toMatch(/^(localstack\/localstack:4\.14\.0|motoserver\/moto:\d+\.\d+\.\d+)$/);
    expect(services.migrate.command).toEqual(['dist/scripts/migrate.js']);
    expect(services.migrate.restart).toBe('no');
    // The sandbox binds to loopback by default; in a container it must listen on all interfaces.
    expect(services['pleo-sandbox'].environment.HOST).toBe('0.0.0.0');
  });

  it('health-checks every long-running container and starts services only on healthy dependencies', () => {
    for (const [name, service] of Object.entries(services)) {
      if (name === 'migrate') continue;
      expect({ name, test: service.healthcheck?.test?.[0] }).toEqual({ name, test: expect.stringMatching(/^CMD(-SHELL)?$/) });
      for (const [dependency, { condition }] of Object.entries((service.depends_on ?? {}) as Record<string, Obj>)) {
        expect(services[dependency]).toBeDefined();
        if (condition === 'service_healthy') expect(services[dependency].healthcheck?.test).toBeDefined();
      }
    }
    for (const name of SERVICES) {
      expect(services[name].depends_on).toMatchObject({
        postgres: { condition: 'service_healthy' },
        rabbitmq: { condition: 'service_healthy' },
        'secrets-manager': { condition: 'service_healthy' },
        migrate: { condition: 'service_completed_successfully' },
      });
      expect(services[name].healthcheck.test.join(' ')).toContain(`127.0.0.1:${DEFAULT_PORTS[name]}/health/live`);
    }
    expect(services.validator.depends_on['pleo-sandbox']).toEqual({ condition: 'service_healthy' });
    // The gateway (port 3004) calls Pleo, so it also waits for the sandbox.
    expect(services.gateway.depends_on).toMatchObject({ ...services.intake.depends_on, 'pleo-sandbox': { condition: 'service_healthy' } });
    expect(services.gateway.healthcheck.test.join(' ')).toContain('127.0.0.1:3004/health/live');
  });

  it('runs the keyward image read-only, without capabilities, published on loopback only', () => {
    expect(keywardServices.map(([name]) => name).sort()).toEqual(['gateway', 'intake', 'migrate', 'monitor', 'pleo-sandbox', 'rotation', 'validator']);
    for (const [, service] of keywardServices) {
      expect(service).toMatchObject({ read_only: true, tmpfs: ['/tmp'], cap_drop: ['ALL'] });
      expect(service.command[0]).toMatch(/^dist\/(apps\/[a-z-]+\/main|scripts\/migrate)\.js$/);
    }
    for (const service of Object.values(services)) for (const port of service.ports ?? []) expect(port).toMatch(/^127\.0\.0\.1:/);
  });

  it('sets every variable explicitly, with real names, and points the aws backend at the stand-in', () => {
    for (const [name, service] of keywardServices) {
      const env = service.environment as Record<string, string>;
      for (const variable of Object.keys(env))
        expect({ name, variable, known: CONFIG_VARIABLES.has(variable) || AWS_SDK_VARIABLES.has(variable) || PROCESS_VARIABLES.has(variable) }).toMatchObject({ known: true });
      if (name === 'pleo-sandbox') continue;
      // Development, because production refuses the sandbox's http:// URL; yet no default is used.
      expect(env.NODE_ENV).toBe('development');
      if (name === 'gateway') expect(env.PORT).toBe('3004');
      // The gateway's own configuration lands with apps/gateway; until then its shared variables are checked as intake's.
      const as: ServiceName = name === 'migrate' ? 'tool' : (SERVICE_NAMES as readonly string[]).includes(name) ? (name as ServiceName) : 'intake';
      const config = loadConfig(as, env);
      expect({ name, defaults: config.devDefaultsUsed }).toEqual({ name, defaults: [] });
      expect(config.secrets.backend).toBe('aws');
      expect(new URL(config.secrets.awsEndpoint!).hostname).toBe('secrets-manager');
      expect(new URL(config.pleo.baseUrl).hostname).toBe('pleo-sandbox');
      expect(new URL(config.database.url).hostname).toBe('postgres');
      expect(new URL(config.amqp.url).hostname).toBe('rabbitmq');
      if (name !== 'migrate' && as === name) expect(config.port).toBe(DEFAULT_PORTS[as]);
    }
  });

  (onPath('docker-compose') || process.env.CI === 'true' ? it : it.skip)('passes `docker-compose config` (when installed), alone and with the offline file', () => {
    execFileSync('docker-compose', ['-f', join(ROOT, 'docker-compose.yml'), 'config', '-q'], { stdio: 'pipe' });
    execFileSync('docker-compose', ['-f', join(ROOT, 'docker-compose.yml'), '-f', join(ROOT, 'docker-compose.offline.yml'), 'config', '-q'], { stdio: 'pipe' });
  });
});

describe('docker-compose.offline.yml', () => {
  const offline = parse(text('docker-compose.offline.yml'), { merge: true }) as Obj;

  it("swaps only the Secrets Manager stand-in: keyward's own emulator from the keyward image, as hardened as the services", () => {
    expect(Object.keys(offline.services)).toEqual(['secrets-manager', 'intake', 'validator', 'rotation', 'gateway']);
    // Besides the stand-in, only each service's own emulator credentials: its IAM role is evaluated on every call.
    for (const name of ['intake', 'validator', 'rotation', 'gateway']) {
      const service = offline.services[name] as Obj;
      expect(Object.keys(service)).toEqual(['environment']);
      expect(Object.keys(service.environment as Obj).sort()).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);
    }
    const emulator = offline.services['secrets-manager'] as Obj;
    expect(emulator).toMatchObject({ image: 'keyward:local', read_only: true, tmpfs: ['/tmp'], cap_drop: ['ALL'], environment: { HOST: '0.0.0.0', PORT: '4566' } });
    expect(emulator.command).toEqual(['dist/scripts/secrets-manager-emulator.js']);
    expect(existsSync(join(ROOT, 'scripts/secrets-manager-emulator.ts'))).toBe(true);
    expect(emulator.healthcheck.test.join(' ')).toContain('127.0.0.1:4566');
  });
});

describe('deploy/k8s', () => {
  it('every YAML file parses and every object names its apiVersion, kind and name', () => {
    const files = yamlFilesUnder(K8S);
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      for (const doc of loadYaml(file)) {
        expect({ file, apiVersion: typeof doc.apiVersion, kind: typeof doc.kind }).toEqual({ file, apiVersion: 'string', kind: 'string' });
        if (doc.kind !== 'Kustomization') expect({ file, name: typeof doc.metadata?.name }).toEqual({ file, name: 'string' });
      }
    }
  });

  describe.each(Object.entries(OVERLAYS))('overlay %s', (overlay, namespace) => {
    const objects = renderKustomization(join(K8S, 'overlays', overlay));
    const config = get(objects, 'ConfigMap', 'keyward-config').data as Record<string, string>;
    const runtimeSecret = objects.find((o) => o.kind === 'ExternalSecret' && o.spec.target.name === 'keyward-runtime');
    const podLabels = (service: Service) => get(objects, 'Deployment', service).spec.template.metadata.labels as Obj;

    it('renders unique, namespaced objects', () => {
      const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
      expect(new Set(ids).size).toBe(ids.length);
      for (const o of objects) {
        if (o.kind === 'Namespace') expect(o.metadata.name).toBe(namespace);
        else expect({ id: `${o.kind}/${o.metadata.name}`, namespace: o.metadata.namespace }).toEqual({ id: `${o.kind}/${o.metadata.name}`, namespace });
      }
      expect(get(objects, 'Namespace', namespace).metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    });

    (onPath('kubectl') || process.env.CI === 'true' ? it : it.skip)('renders exactly as `kubectl kustomize` does (when kubectl is installed)', () => {
      const rendered = execFileSync('kubectl', ['kustomize', join(K8S, 'overlays', overlay)], { encoding: 'utf8', timeout: 30_000 });
      // kustomize appends a content hash to generated ConfigMap names and their references.
      const normalized = parseAllDocuments(rendered.replace(/\bkeyward-config-[a-z0-9]{10}\b/g, 'keyward-config')).map((d) => d.toJS() as Obj);
      const byId = (list: Obj[]) => Object.fromEntries(list.map((o) => [`${o.kind}/${o.metadata.name}`, o]));
      expect(byId(objects)).toEqual(byId(normalized));
    });

    it.each(SERVICES)('%s: Deployment, ServiceAccount and PodDisruptionBudget', (service) => {
      const deployment = get(objects, 'Deployment', service);
      const pod = deployment.spec.template.spec;
      const labels = podLabels(service);
      expect(matches(deployment.spec.selector.matchLabels, labels)).toBe(true);
      // The autoscaler owns the replica count; a `replicas` here would fight it on every apply.
      expect(deployment.spec.replicas).toBeUndefined();

      expect(pod.serviceAccountName).toBe(service);
      expect(find(objects, 'ServiceAccount', service)).toBeDefined();
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.securityContext.runAsUser).toBeGreaterThan(0);

      expect(pod.containers).toHaveLength(1);
      const [container] = pod.containers;
      const port = DEFAULT_PORTS[service];
      expect(container.image).toMatch(/^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com\/keyward:(?!latest$)[\w.-]+$/);
      expect(container.args).toEqual([`dist/apps/${service}/main.js`]);
      expect(container.ports).toEqual([{ name: 'http', containerPort: port, protocol: 'TCP' }]);
      expect(container.env).toContainEqual({ name: 'PORT', value: String(port) });
      expect(container.livenessProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });
      expect(container.startupProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });
      expect(container.readinessProbe.httpGet).toEqual({ path: '/health/ready', port: 'http' });
      expect(container.resources.requests).toEqual({ cpu: expect.anything(), memory: expect.anything() });
      expect(container.resources.limits.memory).toBeDefined();
      expect(container.securityContext).toMatchObject({
        runAsNonRoot: true,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      const tmp = container.volumeMounts.find((m: Obj) => m.mountPath === '/tmp');
      expect(pod.volumes.find((v: Obj) => v.name === tmp?.name)?.emptyDir).toBeDefined();
      expect(deployment.spec.template.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port) });

      const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget' && matches(o.spec.selector.matchLabels, labels));
      expect(pdbs).toHaveLength(1);
      // A budget that allows no eviction would block every node drain.
      const budget = pdbs[0].spec;
      if (budget.maxUnavailable !== undefined) expect(budget.maxUnavailable).toBeGreaterThan(0);
      else expect(budget.minAvailable).toBeLessThan(minReplicas(objects, service));
    });

    /** The environment a container gets: its ConfigMap, its values, placeholders for secret keys. */
    function containerEnv(container: Obj): Record<string, string> {
      const env: Record<string, string> = {};
      for (const source of container.envFrom ?? []) {
        expect(source.configMapRef?.name).toBe('keyward-config');
        Object.assign(env, config);
      }
      for (const variable of container.env as Obj[]) {
        const ref = variable.valueFrom?.secretKeyRef;
        if (ref) expect(ref.name).toBe(runtimeSecret?.spec.target.name);
        env[variable.name] = ref ? placeholderSecret(ref.key) : variable.value;
      }
      return env;
    }

    it.each(SERVICES)('%s: starts with the production configuration, every variable real and explicit', (service) => {
      const [container] = get(objects, 'Deployment', service).spec.template.spec.containers;
      const env = containerEnv(container);
      for (const variable of Object.keys(env)) expect({ variable, known: CONFIG_VARIABLES.has(variable) }).toEqual({ variable, known: true });
      expect(env.NODE_ENV).toBe('production');
      const loaded = loadConfig(service, env);
      expect(loaded.devDefaultsUsed).toEqual([]);
      expect(loaded.secrets.backend).toBe('aws');
      expect(loaded.secrets.envName).toBe(overlay === 'production' ? 'prod' : 'staging');
      expect(loaded.pleo.baseUrl).toBe(overlay === 'production' ? 'https://external.pleo.io' : 'https://external.staging.pleo.io');
    });

    it('migrates with a Job on the same image, as hardened as the services, with the production configuration', () => {
      const job = get(objects, 'Job', 'migrate');
      const pod = job.spec.template.spec;
      const [container] = pod.containers;
      expect(container.args).toEqual(['dist/scripts/migrate.js']);
      expect(container.image).toBe(get(objects, 'Deployment', 'intake').spec.template.spec.containers[0].image);
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
      expect(get(objects, 'ServiceAccount', pod.serviceAccountName).metadata.annotations?.['eks.amazonaws.com/role-arn']).toBeUndefined();
      const env = containerEnv(container);
      for (const variable of Object.keys(env)) expect({ variable, known: CONFIG_VARIABLES.has(variable) }).toEqual({ variable, known: true });
      expect(loadConfig('tool', env).devDefaultsUsed).toEqual([]);
      // On an upgrade these are applied first (deploy/README.md): the Job and what it reads.
      const first = objects.filter((o) => o.metadata.labels?.['keyward.io/apply-before-rollout'] === 'true').map((o) => `${o.kind}/${o.metadata.name}`);
      expect(first.sort()).toEqual(['ConfigMap/keyward-config', 'ExternalSecret/keyward-runtime', 'Job/migrate']);
    });

    it('syncs secrets from AWS Secrets Manager; no Secret with values is committed', () => {
      expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
      expect(runtimeSecret?.spec.dataFrom[0].extract.key).toBe(`keyward-platform/${overlay === 'production' ? 'prod' : 'staging'}/runtime`);
    });

    it('binds intake, validator, rotation and gateway to their own IAM roles (IRSA); monitor to none', () => {
      const account = get(objects, 'Deployment', 'intake').spec.template.spec.containers[0].image.slice(0, 12);
      const env = overlay === 'production' ? 'prod' : 'staging';
      for (const service of SERVICES) {
        const annotation = get(objects, 'ServiceAccount', service).metadata.annotations?.['eks.amazonaws.com/role-arn'];
        if (IRSA_SERVICES.includes(service)) expect(annotation).toBe(`arn:aws:iam::${account}:role/keyward-${env}-${service}`);
        else expect(annotation).toBeUndefined();
      }
    });

    it('puts intake and the gateway behind Services, each scaled by its own HPA on CPU (the gateway also on calls per second)', () => {
      const services = objects.filter((o) => o.kind === 'Service');
      expect(services.map((s) => s.metadata.name).sort()).toEqual([...HTTP_SERVICES].sort());
      for (const name of HTTP_SERVICES) {
        const service = get(objects, 'Service', name);
        expect(matches(service.spec.selector, podLabels(name))).toBe(true);
        expect(service.spec.ports).toEqual([expect.objectContaining({ targetPort: 'http' })]);
        const hpa = get(objects, 'HorizontalPodAutoscaler', name);
        expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name });
        expect(hpa.spec.metrics).toContainEqual(expect.objectContaining({ type: 'Resource', resource: expect.objectContaining({ name: 'cpu' }) }));
        expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
        expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
      }
      const gatewayRate = get(objects, 'HorizontalPodAutoscaler', 'gateway').spec.metrics.find((m: Obj) => m.type === 'Pods');
      expect(gatewayRate?.pods.metric.name).toBe('keyward_gateway_requests_per_second');
      expect(objects.filter((o) => o.kind === 'HorizontalPodAutoscaler')).toHaveLength(HTTP_SERVICES.length);
    });

    it("gives the gateway the per-credential budget that leaves room for the monitor's probes", () => {
      const env = containerEnv(get(objects, 'Deployment', 'gateway').spec.template.spec.containers[0]);
      const loaded = loadConfig('gateway', env);
      expect(loaded.gateway.ratePerMinute).toBeLessThan(loaded.monitor.pleoRateLimitPerMinute);
    });

    it.each(WORKERS)("%s: scaled by KEDA on its own queue's depth", (worker) => {
      const scaled = objects.filter((o) => o.kind === 'ScaledObject' && o.spec.scaleTargetRef.name === worker);
      expect(scaled).toHaveLength(1);
      const { spec } = scaled[0];
      const queue = new TopologyNames(config.KEYWARD_AMQP_PREFIX ?? 'keyward').queue(worker);
      expect(Object.keys(SUBSCRIPTIONS)).toContain(worker);
      expect(spec.triggers).toEqual([expect.objectContaining({ type: 'rabbitmq', metadata: expect.objectContaining({ queueName: queue, mode: 'QueueLength', protocol: 'amqp' }) })]);
      expect(Number(spec.triggers[0].metadata.value)).toBeGreaterThan(0);
      const auth = get(objects, 'TriggerAuthentication', spec.triggers[0].authenticationRef.name);
      expect(auth.spec.secretTargetRef).toEqual([expect.objectContaining({ parameter: 'host', name: runtimeSecret?.spec.target.name })]);

      expect(spec.minReplicaCount).toBeGreaterThanOrEqual(1);
      expect(spec.maxReplicaCount).toBeGreaterThanOrEqual(spec.minReplicaCount);
      // Bounded: each validator replica runs up to KEYWARD_AMQP_PREFETCH calls to Pleo at once.
      if (worker === 'validator') expect(spec.maxReplicaCount).toBeLessThanOrEqual(10);
    });

    it('has no ScaledObject for intake and none for a queue nobody in the cluster consumes', () => {
      const targets = objects.filter((o) => o.kind === 'ScaledObject').map((o) => o.spec.scaleTargetRef.name);
      expect(targets.sort()).toEqual([...WORKERS].sort());
    });

    describe('NetworkPolicies', () => {
      const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
      const selecting = (service: Service) => policies.filter((p) => matches(p.spec.podSelector.matchLabels, podLabels(service)));
      const monitoringOnly = (rule: Obj) =>
        Array.isArray(rule.from) && rule.from.length > 0 && rule.from.every((peer: Obj) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'monitoring' && !peer.ipBlock);

      it('deny everything by default', () => {
        expect(policies).toContainEqual(expect.objectContaining({ spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } }));
      });

      it("let only intake and the gateway take traffic, the gateway only from the integration's namespace (every pod may be scraped from the monitoring namespace)", () => {
        const intakeRules = selecting('intake').flatMap((p) => (p.spec.ingress ?? []) as Obj[]);
        expect(intakeRules.filter((r) => !monitoringOnly(r))).toEqual([{ ports: [{ protocol: 'TCP', port: 3000 }] }]);
        const gatewayRules = selecting('gateway').flatMap((p) => (p.spec.ingress ?? []) as Obj[]);
        expect(gatewayRules.filter((r) => !monitoringOnly(r))).toEqual([
          { from: [{ namespaceSelector: { matchLabels: { 'keyward.io/gateway-client': 'true' } } }], ports: [{ protocol: 'TCP', port: 3004 }] },
        ]);
        for (const worker of WORKERS) {
          const rules = selecting(worker).flatMap((p) => (p.spec.ingress ?? []) as Obj[]);
          expect({ worker, open: rules.filter((r) => !monitoringOnly(r)) }).toEqual({ worker, open: [] });
          expect(rules.length).toBeGreaterThan(0);
          for (const rule of rules) for (const port of rule.ports) expect(['http', DEFAULT_PORTS[worker]]).toContain(port.port);
        }
      });

      it.each(SERVICES)('let %s reach only DNS, Postgres, RabbitMQ and HTTPS', (service) => {
        const rules = selecting(service).flatMap((p) => (p.spec.egress ?? []) as Obj[]);
        const ports = rules.flatMap((r) => {
          expect(r.ports?.length).toBeGreaterThan(0); // no rule opens every port
          return r.ports.map((p: Obj) => `${p.protocol}/${p.port}`);
        });
        expect(new Set(ports)).toEqual(new Set(['UDP/53', 'TCP/53', 'TCP/5432', 'TCP/5672', 'TCP/5671', 'TCP/443']));
        const dns = rules.filter((r) => r.ports.some((p: Obj) => p.port === 53));
        for (const rule of dns) expect(rule.to).toEqual([expect.objectContaining({ podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } })]);
      });
    });

    it('is scraped by Prometheus on every pod', () => {
      const podMonitor = objects.find((o) => o.kind === 'PodMonitor');
      for (const service of SERVICES) expect(matches(podMonitor?.spec.selector.matchLabels, podLabels(service))).toBe(true);
      expect(podMonitor?.spec.podMetricsEndpoints).toEqual([expect.objectContaining({ port: 'http', path: '/metrics' })]);
    });
  });
});

function minReplicas(objects: Obj[], service: Service): number {
  const hpa = find(objects, 'HorizontalPodAutoscaler', service);
  if (hpa) return hpa.spec.minReplicas;
  const scaled = objects.find((o) => o.kind === 'ScaledObject' && o.spec.scaleTargetRef.name === service);
  return scaled?.spec.minReplicaCount ?? 1;
}

function sourceFiles(dirs: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.ts$/.test(entry.name) && !/\.(spec|test)\.ts$/.test(entry.name)) out.push(path);
    }
  };
  for (const dir of dirs) walk(join(ROOT, dir));
  return out;
}

describe('deploy/grafana/keyward-dashboard.json', () => {
  const dashboard = JSON.parse(text('deploy/grafana/keyward-dashboard.json')) as Obj;
  const panels = (dashboard.panels as Obj[]).flatMap((p) => [p, ...((p.panels as Obj[]) ?? [])]);
  const expressions = panels.flatMap((p) => ((p.targets as Obj[]) ?? []).map((t) => t.expr as string));

  /**
   * What the services export, read from their source (every `metrics.counter|gauge|histogram('keyward_…'`
   * call), so the dashboard cannot drift from the code; plus RabbitMQ's queue depth.
   */
  const SERVICE_METRICS: Record<string, 'counter' | 'gauge' | 'histogram'> = { rabbitmq_queue_messages_ready: 'gauge' };
  for (const file of sourceFiles(['apps', 'libs'])) {
    for (const m of readFileSync(file, 'utf8').matchAll(/\.(counter|gauge|histogram)\(\s*'(keyward_[a-z0-9_]+)'/g)) {
      SERVICE_METRICS[m[2]] = m[1] as 'counter' | 'gauge' | 'histogram';
    }
  }

  async function knownSeries(): Promise<Set<string>> {
    // The process metrics exactly as the Metrics registry names them.
    const processMetrics = (await new Metrics('dashboard-check').registry.getMetricsAsJSON()).map((m) => ({ name: m.name, type: String(m.type) }));
    const all = [...Object.entries(SERVICE_METRICS).map(([name, type]) => ({ name, type })), ...processMetrics];
    return new Set(all.flatMap(({ name, type }) => (type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name])));
  }

  it('is a dashboard with unique panel ids, a Prometheus data source variable and a query in every panel', () => {
    expect(dashboard).toMatchObject({ title: expect.any(String), uid: expect.any(String) });
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }));
    for (const panel of panels.filter((p) => p.type !== 'row')) expect({ title: panel.title, queries: panel.targets?.length > 0 }).toEqual({ title: panel.title, queries: true });
  });

  it('queries only metrics that exist', async () => {
    const known = await knownSeries();
    const used = new Set(expressions.flatMap((e) => [...e.matchAll(/\b(keyward_[a-z0-9_]+|rabbitmq_[a-z0-9_]+)\b/g)].map((m) => m[1])));
    expect([...used].filter((name) => !known.has(name))).toEqual([]);
    const variables = (dashboard.templating.list as Obj[]).map((v) => v.definition ?? '').join(' ');
    for (const name of variables.match(/\bkeyward_[a-z0-9_]+/g) ?? []) expect(known.has(name)).toBe(true);
  });

  it('shows submissions, connections, auth failures, alerts, queue depth, retries and outbox lag', () => {
    const all = expressions.join('\n');
    for (const required of [
      'keyward_intake_submissions_total',
      'keyward_monitor_connections',
      'keyward_monitor_auth_failures_total',
      'keyward_monitor_alerts_total',
      'rabbitmq_queue_messages_ready',
      'keyward_events_consumed_total',
      'keyward_outbox_lag_seconds',
      'keyward_monitor_probe_lag_seconds',
      'keyward_gateway_requests_total',
      'keyward_gateway_request_duration_seconds_bucket',
      'keyward_gateway_rate_limited_total',
      'keyward_gateway_refused_total',
      'keyward_gateway_pleo_auth_failures_total',
    ]) {
      expect(all).toMatch(new RegExp(`\\b${required}\\b`));
    }
    expect(all).toMatch(/outcome=~"[^"]*retry/);
  });
});

describe('deploy/iam', () => {
  it.each(IRSA_SERVICES)('has the IAM policy the %s role is created from', (service) => {
    const path = join(ROOT, 'deploy/iam', `${service}.json`);
    expect(existsSync(path)).toBe(true);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ Version: '2012-10-17', Statement: expect.any(Array) });
  });
});
