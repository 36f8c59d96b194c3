import { problem } from '@keyward/contracts';
import { connectPageHeaders, loadConnectPage } from './connect-page';

describe('connect page', () => {
  it('frames nowhere by default, and where the operator says otherwise', () => {
    expect(connectPageHeaders("'none'")).toMatchObject({ 'X-Frame-Options': 'DENY' });
    expect(connectPageHeaders("'none'")['Content-Security-Policy']).toContain("frame-ancestors 'none'");
    const embedded = connectPageHeaders('https://app.example.com');
    expect(embedded['Content-Security-Policy']).toContain('frame-ancestors https://app.example.com');
    expect(embedded).not.toHaveProperty('X-Frame-Options');
  });

  it('carries the texts it shows before asking the server from the problem table, escaped', () => {
    const { html, assets } = loadConnectPage();
    expect(html).not.toContain('{{problems}}');
    expect(html).toContain(`<template id="problem-key_has_auth_scheme"><p class="message">${problem('key_has_auth_scheme').message.replace(/"/g, '&quot;')}</p>`);
    // Every problem the script names is in the page.
    for (const [, code] of assets['connect.js'].body.matchAll(/problemText\('([a-z_]+)'\)/g)) expect(html).toContain(`id="problem-${code}"`);
  });
});
