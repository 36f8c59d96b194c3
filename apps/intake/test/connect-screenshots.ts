import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { problem } from '@keyward/contracts';
import { launchBrowser } from './browser';
import { startConnectStack } from './connect-stack';

/**
 * Regenerates the connect page screenshots in docs/connect/ (shown in the README):
 * `npm run connect:screenshots`. Not part of `npm test`: jest runs this file only when named.
 */
const OUT = join(__dirname, '../../../docs/connect');
const WIDTHS = [360, 1280];

describe('connect page screenshots', () => {
  it('writes success and error at 360 px and 1280 px', async () => {
    mkdirSync(OUT, { recursive: true });
    const stack = await startConnectStack();
    const browser = await launchBrowser();
    try {
      for (const width of WIDTHS) {
        const viewport = { width, height: width < 500 ? 780 : 720 };
        const tenantId = `screens-${width}-${Date.now().toString(36)}`;

        const failing = await stack.mintSession(`${tenantId}-e`);
        const errorPage = await browser.context.newPage();
        await errorPage.setViewportSize(viewport);
        await errorPage.goto(failing.connectUrl);
        await errorPage.getByLabel('API key', { exact: true }).fill(stack.sandbox.state.issueKey({ scopes: ['accounts:read'] }).apiKey);
        await errorPage.getByRole('button', { name: 'Connect', exact: true }).click();
        await errorPage.getByRole('alert').getByText(problem('insufficient_scopes').message).waitFor({ timeout: 20_000 });
        await errorPage.screenshot({ path: join(OUT, `error-${width}.png`), fullPage: true });
        await errorPage.close();

        const session = await stack.mintSession(tenantId, `${stack.url}/health/live`);
        const page = await browser.context.newPage();
        await page.setViewportSize(viewport);
        await page.goto(session.connectUrl);
        await page.getByLabel('API key', { exact: true }).fill(stack.sandbox.state.issueKey({ companyId: '4f1c2a9e-7d1b-4c53-9a0e-2b8e5d6f7a10' }).apiKey);
        await page.getByRole('button', { name: 'Connect', exact: true }).click();
        await page.getByRole('heading', { name: 'Connected' }).waitFor({ timeout: 20_000 });
        await page.screenshot({ path: join(OUT, `connected-${width}.png`), fullPage: true });
        await page.close();
      }
    } finally {
      await browser.close();
      await stack.close();
    }
  }, 180_000);
});
