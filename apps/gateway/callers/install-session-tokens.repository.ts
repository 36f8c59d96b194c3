import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** Reads intake's `install_sessions` to tell a connect-page token (403 here) from an unknown one (401). */
@Injectable()
export class InstallSessionTokensRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async exists(tokenHash: string): Promise<boolean> {
    const rows = await this.dataSource.query<unknown[]>('SELECT 1 FROM install_sessions WHERE token_hash = $1', [tokenHash]);
    return rows.length > 0;
  }
}
