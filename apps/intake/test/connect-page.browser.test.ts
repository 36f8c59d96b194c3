import { randomBytes } from 'node:crypto';
import AxeBuilder from '@axe-core/playwright';
import type { ConsoleMessage, Page, Request } from 'playwright-core';
import { problem, ProblemCode } from '@keyward/contracts';
import { canaryKey, eventually, installSessionAsIntake } from '@keyward/testing';
import { installSessionTokenHash } from '@keyward/service-auth';
import { launchBrowser, TestBrowser } from './browser';
import { ConnectStack, startConnectStack } from './connect-stack';

/**
 * The connect page in a real Chromium against real intake, validator and rotation, with the Pleo
 * sandbox as Pleo: what a customer sees for every outcome, by keyboard alone, and what the page
 * never does with the key.
 */
describe('connect page (Chromium)', () => {
  let stack: ConnectStack;
  let browser: TestBrowser;
  let counter = 0;
  const tenant = () => `connect-${process.pid}-${Date.now().toString(36)}-${++counter}`;

  beforeAll(async () => {
    stack = await startConnectStack();
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  afterEach(() => stack.sandbox.state.clearFault());

  /** A page with everything it does recorded: console lines, script errors, requests. */
  interface Watched {
    page: Page;
    console: string[];
    errors: string[];
    requests: Request[];
  }

  async function open(url: string, viewport = { width: 1280, height: 900 }): Promise<Watched> {
    const page = await browser.context.newPage();
    await page.setViewportSize(viewport);
    const watched: Watched = { page, console: [], errors: [], requests: [] };
    page.on('console', (m: ConsoleMessage) => watched.console.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => watched.errors.push(String(e)));
    page.on('request', (r) => watched.requests.push(r));
    await page.goto(url);
    return watched;
  }

  const keyField = (page: Page) => page.getByLabel('API key', { exact: true });
  const connectButton = (page: Page) => page.getByRole('button', { name: 'Connect', exact: true });
  const alertText = (page: Page) => page.getByRole('alert').innerText();

  async function expectProblemShown(page: Page, code: ProblemCode): Promise<void> {
    const expected = problem(code);
    await page.getByRole('alert').getByText(expected.message).waitFor({ timeout: 20_000 });
    expect(await alertText(page)).toContain(expected.action);
  }

  async function paste(page: Page, key: string): Promise<void> {
    await keyField(page).fill(key);
    await connectButton(page).click();
  }

  async function connectedTenant(companyId: string): Promise<{ tenantId: string; last4: string }> {
    const tenantId = tenant();
    const key = stack.sandbox.state.issueKey({ companyId });
    const res = await stack.service('PUT', `/v1/tenants/${tenantId}/pleo/key`, { apiKey: key.apiKey }, { Prefer: 'wait=20' });
    expect(res.body.status).toBe('accepted');
    return { tenantId, last4: key.apiKey.slice(-4) };
  }

  it('serves the page with a strict policy: own origin only, no inline script, no referrer, no caching, no framing', async () => {
    for (const path of ['/connect', '/connect/assets/connect.js', '/connect/assets/connect.css']) {
      const res = await fetch(`${stack.url}${path}`);
      expect(res.status).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp.split('; ')).toEqual(expect.arrayContaining(["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"]));
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    const html = await (await fetch(`${stack.url}/connect`)).text();
    // Every script comes from a file of this origin; no inline handlers; nothing third-party.
    for (const [, attributes, body] of html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)) {
      expect(attributes).toMatch(/src="\/connect\/assets\/connect\.js"/);
      expect(body.trim()).toBe('');
    }
    expect(html).not.toMatch(/\son[a-z]+=/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('connects: shows Connected, the company, the key as ••••last4, the scopes and Continue — and the key is nowhere after', async () => {
    const tenantId = tenant();
    const returnUrl = `${stack.url}/health/live`;
    const session = await stack.mintSession(tenantId, returnUrl);
    expect(session.connectUrl).toBe(`${stack.url}/connect#session=${session.token}`);
    const key = stack.sandbox.state.issueKey({ companyId: 'c-0b9f3d2e', scopes: ['accounts:read', 'export-jobs:write', 'users:read'] });
    const w = await open(session.connectUrl);
    const { page } = w;

    // The token left the address bar at once.
    await keyField(page).waitFor();
    expect(page.url()).toBe(`${stack.url}/connect`);
    expect(await keyField(page).getAttribute('type')).toBe('password');
    expect(await keyField(page).getAttribute('autocomplete')).toBe('off');
    expect(await keyField(page).getAttribute('spellcheck')).toBe('false');

    // Pasted with the stray whitespace a copy brings along.
    await paste(page, `  ${key.apiKey}\n`);
    await page.getByRole('heading', { name: 'Connected' }).waitFor({ timeout: 20_000 });
    const connected = await page.locator('#connected').innerText();
    expect(connected).toContain('c-0b9f3d2e');
    expect(connected).toContain(`••••${key.apiKey.slice(-4)}`);
    expect(connected).toContain('accounts:read, export-jobs:write, users:read');
    expect(await page.getByRole('link', { name: 'Continue' }).getAttribute('href')).toBe(returnUrl);
    expect(await page.getByRole('status').innerText()).toBe('Connected.');

    // Never: URL, history, storage, console, DOM, requests to other origins, the key in a URL.
    // Evaluated in the page (a string: this project compiles without DOM types).
    const inPage = await page.evaluate<{ href: string; historyLength: number; local: number; session: number; fieldValue: string; html: string }>(`({
      href: location.href,
      historyLength: history.length,
      local: localStorage.length,
      session: sessionStorage.length,
      fieldValue: document.getElementById('api-key').value,
      html: document.documentElement.outerHTML,
    })`);
    expect(inPage.href).toBe(`${stack.url}/connect`);
    // Two entries (the blank tab, the page); going back and forth never shows the token.
    expect(inPage.historyLength).toBe(2);
    expect(inPage.local).toBe(0);
    expect(inPage.session).toBe(0);
    expect(inPage.fieldValue).toBe('');
    expect(inPage.html).not.toContain(key.apiKey);
    expect(inPage.html).not.toContain(session.token);
    expect(w.console.join('\n')).not.toContain(key.apiKey);
    expect(w.errors).toEqual([]);
    expect(w.requests.map((r) => new URL(r.url()).origin).filter((o) => o !== stack.url)).toEqual([]);
    expect(w.requests.map((r) => r.url()).join('\n')).not.toContain(key.apiKey);
    expect(w.requests.map((r) => r.url()).join('\n')).not.toContain(session.token);
    // The key travelled once, in the body of the PUT.
    const carrying = w.requests.filter((r) => (r.postData() ?? '').includes(key.apiKey));
    expect(carrying.map((r) => `${r.method()} ${new URL(r.url()).pathname}`)).toEqual([`PUT /v1/tenants/${tenantId}/pleo/key`]);
    expect(w.requests.every((r) => !r.headers()['referer'])).toBe(true);

    const axe = await new AxeBuilder({ page }).analyze();
    expect(axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([]);

    // The same link again: used up, with the way to start again.
    await page.goBack();
    expect(page.url()).toBe('about:blank');
    await page.goForward();
    expect(page.url()).toBe(`${stack.url}/connect`);

    const again = await open(session.connectUrl);
    await expectProblemShown(again.page, 'install_session_used');
    expect(await keyField(again.page).isVisible()).toBe(false);
    await again.page.close();
    await page.close();
  });

  it.each<[string, () => Promise<{ tenantId: string; key: string }>, ProblemCode]>([
    ['a key Pleo does not know', async () => ({ tenantId: tenant(), key: canaryKey('unknown') }), 'invalid_key'],
    ['a key without the required permissions', async () => ({ tenantId: tenant(), key: stack.sandbox.state.issueKey({ scopes: ['accounts:read'] }).apiKey }), 'insufficient_scopes'],
    ['an organisation key', async () => ({ tenantId: tenant(), key: stack.sandbox.state.issueKey({ subject: 'organization' }).apiKey }), 'unsupported_subject'],
    [
      "another company's key for a connected tenant",
      async () => ({ tenantId: (await connectedTenant('c-first')).tenantId, key: stack.sandbox.state.issueKey({ companyId: 'c-second' }).apiKey }),
      'company_mismatch',
    ],
    ['text too short to be a key', async () => ({ tenantId: tenant(), key: 'pleo_short' }), 'key_too_short'],
  ])('refuses %s with what failed and what to do, clears the field, keeps the person on the page', async (_what, arrange, code) => {
    const { tenantId, key } = await arrange();
    const session = await stack.mintSession(tenantId);
    const w = await open(session.connectUrl);
    await keyField(w.page).waitFor();
    await paste(w.page, key);
    await expectProblemShown(w.page, code);
    expect(await keyField(w.page).inputValue()).toBe('');
    expect(await keyField(w.page).isVisible()).toBe(true);
    expect(await connectButton(w.page).isEnabled()).toBe(true);
    expect(await w.page.content()).not.toContain(key);
    expect(w.console.join('\n')).not.toContain(key);
    if (code === 'insufficient_scopes') {
      const axe = await new AxeBuilder({ page: w.page }).analyze();
      expect(axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([]);
    }
    await w.page.close();
  });

  it.each<[string, (key: string) => string, ProblemCode]>([
    ['a pasted "Bearer …" header', (key) => `Bearer ${key}`, 'key_has_auth_scheme'],
    ['a key broken by a space', (key) => `${key.slice(0, 10)} ${key.slice(10)}`, 'key_inner_whitespace'],
  ])('explains %s before sending anything', async (_what, mangle, code) => {
    const session = await stack.mintSession(tenant());
    const key = stack.sandbox.state.issueKey({}).apiKey;
    const w = await open(session.connectUrl);
    await keyField(w.page).waitFor();
    await paste(w.page, mangle(key));
    await expectProblemShown(w.page, code);
    expect(w.requests.filter((r) => r.method() === 'PUT')).toEqual([]);
    expect(await keyField(w.page).inputValue()).toBe('');
    await w.page.close();
  });

  it('says so while Pleo is down, keeps checking, and connects once Pleo is back', async () => {
    const session = await stack.mintSession(tenant());
    const key = stack.sandbox.state.issueKey({ companyId: 'c-patient' });
    stack.sandbox.state.setFault({ status: 503, durationMs: 12_000 });
    const w = await open(session.connectUrl);
    await keyField(w.page).waitFor();
    await paste(w.page, key.apiKey);
    await w.page.getByRole('status').getByText(problem('pleo_unreachable').message).waitFor({ timeout: 15_000 });
    expect(await w.page.getByRole('alert').innerText()).toBe('');
    await w.page.getByRole('heading', { name: 'Connected' }).waitFor({ timeout: 30_000 });
    expect(await w.page.locator('#connected').innerText()).toContain('c-patient');
    await w.page.close();
  }, 60_000);

  it('an expired link says how to start again and offers no field', async () => {
    const token = randomBytes(32).toString('base64url');
    await installSessionAsIntake(stack.db, { tokenHash: installSessionTokenHash(token), tenantId: tenant(), lifetimeMinutes: -1 });
    const w = await open(`${stack.url}/connect#session=${token}`);
    await expectProblemShown(w.page, 'install_session_expired');
    expect(await keyField(w.page).isVisible()).toBe(false);
    expect(w.page.url()).toBe(`${stack.url}/connect`);
    await w.page.close();
  });

  it('a link without a session says how to start again', async () => {
    const w = await open(`${stack.url}/connect`);
    await expectProblemShown(w.page, 'install_session_missing');
    expect(await keyField(w.page).isVisible()).toBe(false);
    await w.page.close();
  });

  it('a replacement says which key it replaces, before and after', async () => {
    const { tenantId, last4 } = await connectedTenant('c-replace');
    const session = await stack.mintSession(tenantId);
    const next = stack.sandbox.state.issueKey({ companyId: 'c-replace' });
    const w = await open(session.connectUrl);
    await keyField(w.page).waitFor();
    expect(await w.page.locator('#replacing').innerText()).toContain(`••••${last4}`);
    await paste(w.page, next.apiKey);
    await w.page.getByRole('heading', { name: 'Connected' }).waitFor({ timeout: 20_000 });
    const text = await w.page.locator('#connected').innerText();
    expect(text).toContain(`••••${next.apiKey.slice(-4)}`);
    expect(text).toContain(`replaced the key ••••${last4}`);
    await w.page.close();
  });

  it('works with the keyboard alone, from the field to Continue', async () => {
    const returnUrl = `${stack.url}/health/live`;
    const session = await stack.mintSession(tenant(), returnUrl);
    const key = stack.sandbox.state.issueKey({});
    const w = await open(session.connectUrl);
    const { page } = w;
    await keyField(page).waitFor();
    const focused = () => page.evaluate(`document.activeElement && (document.activeElement.id || document.activeElement.tagName)`);
    expect(await focused()).toBe('api-key');
    await page.keyboard.type(key.apiKey);
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('toggle-key');
    await page.keyboard.press('Space');
    expect(await keyField(page).getAttribute('type')).toBe('text');
    await page.keyboard.press('Space');
    expect(await keyField(page).getAttribute('type')).toBe('password');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('connect');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Connected' }).waitFor({ timeout: 20_000 });
    await eventually(async () => (await focused()) === 'connected-title', 5_000, 'focus on the Connected heading');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('continue');
    await Promise.all([page.waitForURL(returnUrl), page.keyboard.press('Enter')]);
    await page.close();
  });
});
