// CORS in Chromium: a page on an allowed origin reads the API with a bearer token; others cannot.
import assert from 'node:assert/strict';
import { createServer, type Server as HttpServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from './support/browser.js';
import {
  createUser,
  freePort,
  login,
  startServer,
  tempDir,
  TEST_TIMEOUT_MS,
  type Server,
} from './support/process.js';

/** A page of its own origin: the browser sends Origin and enforces CORS on its fetches. */
async function servePage(): Promise<{ origin: string; server: HttpServer }> {
  const port = await freePort();
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end('<!doctype html><title>another origin</title><p>client</p>');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${port}`, server };
}

interface FetchResult {
  status?: number;
  etag?: string | null;
  title?: string;
  error?: string;
}

describe(
  'CORS from a page on another origin, in Chromium',
  { timeout: TEST_TIMEOUT_MS * 2 },
  () => {
    let api: Server;
    let allowed: { origin: string; server: HttpServer };
    let other: { origin: string; server: HttpServer };
    let browser: Browser;
    let token: string;

    before(async () => {
      allowed = await servePage();
      other = await servePage();
      const cwd = tempDir();
      api = await startServer(cwd, { MYAPI_CORS__ORIGINS: allowed.origin });
      await createUser(cwd);
      token = await login(api.url);
      browser = await launchChromium();
    });

    after(async () => {
      await browser.close();
      await api.stop();
      allowed.server.close();
      other.server.close();
    });

    /** fetch() with a bearer token from a page of `origin`, as a single-page app would. */
    async function fetchFrom(origin: string, method = 'GET'): Promise<FetchResult> {
      const page = await browser.newPage();
      try {
        await page.goto(`${origin}/`);
        return await page.evaluate(
          async ({ url, bearer, verb }) => {
            try {
              const response = await fetch(url, {
                method: verb,
                headers: { authorization: `Bearer ${bearer}` },
              });
              const body = (await response.json()) as { title?: string };
              return {
                status: response.status,
                etag: response.headers.get('etag'),
                title: body.title,
              };
            } catch (error) {
              return { error: String(error) };
            }
          },
          { url: `${api.url}/movies/1`, bearer: token, verb: method },
        );
      } finally {
        await page.close();
      }
    }

    it('an allowed origin: the preflighted fetch with Authorization succeeds and sees ETag', async () => {
      const result = await fetchFrom(allowed.origin);
      assert.equal(result.error, undefined, JSON.stringify(result));
      assert.equal(result.status, 200);
      assert.equal(result.title, 'The Shawshank Redemption');
      assert.match(result.etag ?? '', /^(W\/)?"/, 'ETag is not exposed to the page');
    });

    it('an origin not on the list: the browser blocks the fetch', async () => {
      const result = await fetchFrom(other.origin);
      assert.equal(result.status, undefined, JSON.stringify(result));
      assert.match(result.error ?? '', /Failed to fetch/);
    });

    it('an allowed origin: a DELETE is preflighted and reaches the API (403 without the scope)', async () => {
      const result = await fetchFrom(allowed.origin, 'DELETE');
      assert.equal(result.error, undefined, JSON.stringify(result));
      assert.equal(result.status, 403);
    });
  },
);
