import { Controller, Get, Inject, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { KEYWARD_CONFIG, KeywardConfig } from '@keyward/config';
import { connectPageHeaders, ConnectAsset, loadConnectPage } from './connect-page';
import { Refusal } from '@keyward/contracts';

/**
 * The hosted page where a customer pastes the key Pleo generated (GET /connect#session=…).
 * Served by intake so it shares the API's origin: the page talks only to 'self'.
 */
@ApiExcludeController()
@Controller('connect')
export class ConnectPageController {
  private readonly page = loadConnectPage();
  private readonly headers: Record<string, string>;

  constructor(@Inject(KEYWARD_CONFIG) config: KeywardConfig) {
    this.headers = connectPageHeaders(config.connect.frameAncestors);
  }

  @Get()
  html(@Res() res: Response): void {
    this.send(res, { body: this.page.html, contentType: 'text/html; charset=utf-8' });
  }

  @Get('assets/:name')
  asset(@Param('name') name: string, @Res() res: Response): void {
    const asset = Object.prototype.hasOwnProperty.call(this.page.assets, name) ? this.page.assets[name] : undefined;
    if (!asset) throw new Refusal('not_found');
    this.send(res, asset);
  }

  private send(res: Response, asset: ConnectAsset): void {
    for (const [name, value] of Object.entries(this.headers)) res.setHeader(name, value);
    res.status(200).type(asset.contentType).send(asset.body);
  }
}
