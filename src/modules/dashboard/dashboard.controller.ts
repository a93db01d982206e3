import { Controller, Get, Headers, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { RawResponse } from '../../common/envelope.js';
import { Public } from '../auth/auth.decorators.js';
import { SkipRateLimit } from '../rate-limit/rate-limit.guard.js';
import { type DashboardAsset, loadDashboardAssets } from './dashboard-assets.js';

/**
 * Everything the page loads comes from here: scripts and styles from 'self', data over
 * same-origin fetch and the Socket.IO websocket. No inline script or style is allowed.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self' ws: wss:",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

/**
 * The live dashboard (docs/dashboard.md). The page and its assets are public: they hold no
 * data; the page asks for an API key and reads the API and /events with it.
 */
@ApiExcludeController()
@RawResponse()
@Public()
@SkipRateLimit()
@Controller('dashboard')
export class DashboardController {
  private readonly assets = loadDashboardAssets();

  @Get()
  page(@Headers('if-none-match') ifNoneMatch: string | undefined, @Res() res: Response): void {
    // The page itself is revalidated every time, so a new build is picked up at once.
    this.send(res, this.assets.get('index.html'), ifNoneMatch, 'no-cache');
  }

  @Get('assets/:file')
  asset(
    @Param('file') file: string,
    @Headers('if-none-match') ifNoneMatch: string | undefined,
    @Res() res: Response,
  ): void {
    // Asset names carry no version, so browsers revalidate after a short while (ETag answers 304).
    this.send(res, file === 'index.html' ? undefined : this.assets.get(file), ifNoneMatch, 'public, max-age=300');
  }

  private send(res: Response, asset: DashboardAsset | undefined, ifNoneMatch: string | undefined, cache: string): void {
    res.setHeader('Content-Security-Policy', DASHBOARD_CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (!asset) {
      const built = this.assets.size > 0;
      res
        .status(built ? 404 : 503)
        .type('text/plain')
        .send(built ? 'Not found' : 'The dashboard is not built: run `npm run build`.');
      return;
    }
    res.setHeader('Cache-Control', cache);
    res.setHeader('ETag', asset.etag);
    if (ifNoneMatch === asset.etag) {
      res.status(304).end();
      return;
    }
    res.setHeader('Content-Type', asset.contentType);
    res.send(asset.body);
  }
}
