/**
 * End to end: the server started as a user starts it (`node dist/cli.js serve` in an empty
 * folder, embedded database), a user made with the CLI while it runs, and Swagger UI at /docs
 * driven in Chromium: render, Authorize with the OAuth2 password flow, Try it out on a protected
 * route, and a personal access token pasted into the bearer box instead. Every request the pages
 * make is recorded: the docs must work fully offline.
 *
 * Needs `npm run build` first (it runs dist/, as a user does) and Chromium at /usr/bin/chromium.
 * DOCS_E2E_SCREENSHOT=/some/file.png keeps the screenshot; otherwise it goes with the temp dir.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Browser, Locator, Page, Response } from 'playwright-core';
import { launchChromium } from './support/browser.js';
import { CLI, CREATE_USER_ARGS, scaled, USER } from './support/process.js';
import { SCOPE_DESCRIPTIONS } from '../src/services/scopes.js';

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
const READY_TIMEOUT_MS = scaled(30_000);
const UI_TIMEOUT_MS = scaled(15_000);
const STOP_TIMEOUT_MS = scaled(15_000);

const run = promisify(execFile);

/** A port nobody listens on right now, picked by the kernel. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => {
        if (address === null || typeof address === 'string') reject(new Error('no port'));
        else resolve(address.port);
      });
    });
  });
}

/** The caller's environment without any MYAPI_* setting (names are case-insensitive), plus ours. */
function serverEnv(port: number): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^myapi_/i.test(name)),
  );
  return { ...env, MYAPI_PORT: String(port) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Swagger UI at /docs, in Chromium, against `myapi serve`', () => {
  let workDir: string | undefined;
  let server: ChildProcess | undefined;
  let serverExit: Promise<number | null> | undefined;
  let serverOutput = '';
  let browser: Browser | undefined;
  let page: Page;
  let origin: string;
  const requests: { method: string; url: string }[] = [];
  const responses: Response[] = [];
  const pageErrors: string[] = [];

  const serverLogTail = () => serverOutput.slice(-4000);

  /** One attribute of every element matching a selector. */
  async function attributes(selector: string, name: string): Promise<string[]> {
    const values = await Promise.all(
      (await page.locator(selector).all()).map((element) => element.getAttribute(name)),
    );
    return values.filter((value) => value !== null);
  }

  async function waitUntilReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const how = child.exitCode ?? child.signalCode ?? 'unknown';
        throw new Error(`the server exited (${how}) before it was ready:\n${serverLogTail()}`);
      }
      try {
        const response = await fetch(`${origin}/ready`, { signal: AbortSignal.timeout(2000) });
        if (response.status === 200) return;
        last = `${response.status} ${await response.text()}`;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
      }
      await sleep(200);
    }
    throw new Error(
      `GET /ready did not answer 200 within 30 s (last: ${last}):\n${serverLogTail()}`,
    );
  }

  /** Records what `opened` requests and answers, and its errors, for the checks at the end. */
  function watch(opened: Page): void {
    opened.setDefaultTimeout(UI_TIMEOUT_MS);
    opened.on('request', (request) => {
      requests.push({ method: request.method(), url: request.url() });
    });
    opened.on('response', (response) => {
      responses.push(response);
    });
    opened.on('pageerror', (error) => {
      pageErrors.push(error.message);
    });
  }

  /** The Authorize dialog's part for one security scheme, found by the name in its heading. */
  function schemeIn(dialog: Locator, name: string): Locator {
    return dialog
      .locator('.auth-container')
      .filter({ has: dialog.page().locator('h4', { hasText: name }) });
  }

  /** The one response the page got for a request matching method and path. */
  function responseTo(method: string, path: string): Response {
    const found = responses.filter(
      (response) =>
        response.request().method() === method && new URL(response.url()).pathname === path,
    );
    const [first] = found;
    assert.ok(first !== undefined && found.length === 1, `${found.length} × ${method} ${path}`);
    return first;
  }

  before(
    async () => {
      assert.ok(existsSync(CLI), `${CLI} is missing: run \`npm run build\` first`);
      workDir = await mkdtemp(join(tmpdir(), 'myapi-docs-e2e-'));
      const port = await freePort();
      origin = `http://127.0.0.1:${port}`;
      const env = serverEnv(port);

      const child = spawn(process.execPath, [CLI, 'serve'], {
        cwd: workDir,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      server = child;
      serverExit = new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          resolve(signal === null ? code : null);
        });
      });
      const keep = (chunk: Buffer) => {
        serverOutput = (serverOutput + chunk.toString('utf8')).slice(-64_000);
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      await waitUntilReady(child);

      // As a user does: a second process while the server holds the embedded database.
      const created = await run(process.execPath, [CLI, ...CREATE_USER_ARGS], {
        cwd: workDir,
        env,
        timeout: scaled(30_000),
      });
      assert.match(created.stdout, new RegExp(`created user \\d+ ${USER.name} <${USER.email}>`));

      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      page = await context.newPage();
      watch(page);
    },
    { timeout: scaled(50_000) },
  );

  after(
    async () => {
      const problems: string[] = [];
      try {
        await browser?.close();
      } catch (error) {
        problems.push(`closing the browser: ${String(error)}`);
      }
      if (server !== undefined && serverExit !== undefined) {
        const child = server;
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => {
            resolve('timeout');
          }, STOP_TIMEOUT_MS);
        });
        const code = await Promise.race([serverExit, timeout]);
        clearTimeout(timer);
        if (code === 'timeout') {
          child.kill('SIGKILL');
          await serverExit;
          problems.push(
            `the server did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM:\n${serverLogTail()}`,
          );
        } else if (code !== 0) {
          problems.push(`the server exited with ${code} after SIGTERM:\n${serverLogTail()}`);
        }
      }
      if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
      assert.deepEqual(problems, []);
    },
    { timeout: scaled(30_000) },
  );

  it('renders the API title, its tags and operations, styled', async () => {
    const opened = await page.goto(`${origin}/docs`);
    assert.equal(opened?.status(), 200);
    const title = page.locator('.info .title');
    await title.waitFor();
    await page.locator('.opblock-tag').first().waitFor();

    // The h1 reads "myapi 0.1.0 OAS 3.1": the title, then the version badges.
    assert.match(await title.innerText(), /^myapi\s+0\.\d+\.\d+\s+OAS 3\.1$/);
    assert.equal((await title.locator('.version-stamp').innerText()).trim(), 'OAS 3.1');

    const tags = await attributes('.opblock-tag', 'data-tag');
    for (const tag of ['Authentication', 'Movies']) {
      assert.ok(tags.includes(tag), `tags shown: ${tags.join(', ')}`);
      assert.ok(await page.locator(`.opblock-tag[data-tag="${tag}"]`).isVisible());
    }
    const paths = await attributes('.opblock-summary-path', 'data-path');
    for (const path of ['/token', '/movies/', '/movies/new', '/movies/{movie_id}']) {
      assert.ok(paths.includes(path), `operations shown: ${paths.join(', ')}`);
    }
    assert.ok(await page.locator('.auth-wrapper .btn.authorize').isVisible());

    // Styled, not a bare DOM: Swagger UI's stylesheet loaded and applies. (Page code is passed
    // as strings: this project compiles without the DOM library.)
    const rules = await page.evaluate<number>(
      "[...document.styleSheets].find((s) => s.href?.endsWith('/swagger-ui.css'))?.cssRules.length ?? 0",
    );
    assert.ok(rules > 100, `swagger-ui.css has ${rules} rules`);
    const background = await page
      .locator('.opblock.opblock-get')
      .first()
      .evaluate<string, undefined>('(el) => getComputedStyle(el).backgroundColor');
    assert.notEqual(background, 'rgba(0, 0, 0, 0)', 'GET operations have no background');
  });

  it('serves an OpenAPI 3.1 document with summaries, tags and error responses', async () => {
    const response = await fetch(`${origin}/openapi.json`);
    assert.equal(response.status, 200);
    const doc = (await response.json()) as {
      openapi: string;
      info: { title: string };
      tags?: { name: string }[];
      paths: Record<
        string,
        Record<string, { summary?: string; tags?: string[]; responses: object }>
      >;
      components?: { securitySchemes?: Record<string, unknown> };
    };
    assert.ok(doc.openapi.startsWith('3.1'), `openapi is ${doc.openapi}`);
    assert.equal(doc.info.title, 'myapi');

    const declared = new Set((doc.tags ?? []).map((tag) => tag.name));
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ path, method, operation })),
    );
    assert.ok(operations.length >= 6, `only ${operations.length} operations`);
    for (const { path, method, operation } of operations) {
      const name = `${method.toUpperCase()} ${path}`;
      assert.ok((operation.summary ?? '').trim() !== '', `${name} has no summary`);
      assert.ok((operation.tags ?? []).length > 0, `${name} has no tags`);
      for (const tag of operation.tags ?? []) {
        assert.ok(declared.has(tag), `${name}: tag ${tag} is not declared in the top-level tags`);
      }
    }

    const getMovie = doc.paths['/movies/{movie_id}']?.get;
    assert.ok(getMovie !== undefined, 'GET /movies/{movie_id} is missing');
    for (const status of ['200', '401', '404', '422']) {
      assert.ok(status in getMovie.responses, `GET /movies/{movie_id} lacks a ${status} response`);
    }
    const schemes = doc.components?.securitySchemes ?? {};
    assert.deepEqual(Object.keys(schemes), ['OAuth2PasswordBearer', 'HTTPBearer']);
    assert.deepEqual(schemes.OAuth2PasswordBearer, {
      type: 'oauth2',
      flows: {
        password: {
          tokenUrl: '/token',
          refreshUrl: '/token',
          scopes: SCOPE_DESCRIPTIONS,
        },
      },
    });
    // A box for a bearer token from elsewhere: a personal access token, say.
    assert.deepEqual(
      { ...(schemes.HTTPBearer as object), description: undefined },
      {
        type: 'http',
        scheme: 'bearer',
        description: undefined,
      },
    );

    // The page renders the same document.
    const shown: unknown = await (await fetch(`${origin}/docs/json`)).json();
    assert.deepEqual(shown, doc);
  });

  it('logs in with the password flow of the Authorize dialog', async () => {
    await page.locator('.auth-wrapper .btn.authorize').click();
    const dialog = page.locator('.dialog-ux .modal-ux');
    await dialog.waitFor();
    // Two ways in: the password flow, and a box for a bearer token (the next page's test).
    assert.equal(await dialog.locator('.auth-container').count(), 2);
    const oauth = schemeIn(dialog, 'OAuth2PasswordBearer');
    assert.match(await oauth.locator('h4').innerText(), /password/i);

    await oauth.locator('input#oauth_username').fill(USER.email);
    await oauth.locator('input#oauth_password').fill(USER.password);
    // Client id and secret stay empty, as the API description tells users.
    assert.equal(await oauth.locator('input#client_id_password').inputValue(), '');
    assert.equal(await oauth.locator('input#client_secret_password').inputValue(), '');

    // The dialog offers the scopes; a regular user asks for the one it may have.
    for (const scope of ['movies:read', 'movies:write', 'users:admin']) {
      assert.equal(await oauth.locator(`input[data-value="${scope}"]`).count(), 1, scope);
    }
    // The checkbox itself is hidden behind its styled label, which is what a person clicks.
    const box = oauth.locator('input[data-value="movies:read"]');
    await oauth.locator(`label[for="${String(await box.getAttribute('id'))}"]`).click();
    assert.equal(await box.isChecked(), true);

    const tokenResponse = page.waitForResponse(
      (response) =>
        response.request().method() === 'POST' && new URL(response.url()).pathname === '/token',
    );
    await oauth.locator('.auth-btn-wrapper button.authorize', { hasText: 'Authorize' }).click();
    const token = await tokenResponse;
    assert.equal(token.status(), 200, `POST /token answered ${token.status()}`);
    const body = (await token.json()) as { access_token?: unknown; token_type?: unknown };
    assert.equal(body.token_type, 'bearer');
    assert.equal(typeof body.access_token, 'string');
    const sent = new URLSearchParams(token.request().postData() ?? '');
    assert.equal(sent.get('username'), USER.email);
    assert.equal(sent.get('grant_type'), 'password');
    assert.equal(sent.get('scope'), 'movies:read');

    // Logged in: the dialog says so and offers Logout instead of Authorize.
    await oauth.locator('.auth-btn-wrapper button', { hasText: 'Logout' }).waitFor();
    assert.equal((await oauth.locator('h6').innerText()).trim(), 'Authorized');
    assert.equal(await dialog.locator('.errors').count(), 0);

    await oauth.locator('.auth-btn-wrapper .btn-done').click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('.auth-wrapper .btn.authorize.locked').waitFor();
    assert.equal(responseTo('POST', '/token').status(), 200);
  });

  it('runs GET /movies/new with Try it out, sending the bearer token', async () => {
    const operation = page.locator('.opblock').filter({
      has: page.locator('.opblock-summary-path[data-path="/movies/new"]'),
    });
    await operation.locator('.opblock-summary-control').click();
    await operation.locator('.try-out__btn').click();
    await operation.locator('tr[data-param-name="year"] input').fill('1990');
    await operation.locator('tr[data-param-name="rating"] input').fill('9');

    const moviesResponse = page.waitForResponse(
      (response) => new URL(response.url()).pathname === '/movies/new',
    );
    await operation.locator('.execute').click();
    await moviesResponse;

    const shown = operation.locator('.live-responses-table tbody .response').first();
    await shown.waitFor();
    assert.equal((await shown.locator('.response-col_status').innerText()).trim(), '200');
    const text = await shown.locator('.response-col_description .microlight').first().innerText();
    assert.ok(text.includes('The Shawshank Redemption'), text);
    assert.ok(text.includes('The Dark Knight'), text);
    const movies = JSON.parse(text) as { title: string; released: number; rating: number }[];
    assert.ok(movies.length >= 2);
    for (const movie of movies) {
      assert.ok(movie.released >= 1990 && movie.rating >= 9, JSON.stringify(movie));
    }

    const response = responseTo('GET', '/movies/new');
    assert.equal(response.status(), 200);
    const url = new URL(response.url());
    assert.equal(url.searchParams.get('year'), '1990');
    assert.equal(url.searchParams.get('rating'), '9');
    const headers = await response.request().allHeaders();
    assert.match(headers.authorization ?? '', /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);

    const shot = process.env.DOCS_E2E_SCREENSHOT ?? join(workDir ?? tmpdir(), 'docs.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = await readFile(shot);
    assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
    assert.ok(png.length > 20_000, `the screenshot is only ${png.length} bytes`);
  });

  it('takes a personal access token pasted into the bearer box, and Try it out sends it', async () => {
    // The token a person made through the API (docs/authentication.md), with only movies:read.
    const login = await fetch(`${origin}/token`, {
      method: 'POST',
      body: new URLSearchParams({ username: USER.email, password: USER.password }),
    });
    assert.equal(login.status, 200, await login.clone().text());
    const { access_token: access } = (await login.json()) as { access_token: string };
    const created = await fetch(`${origin}/users/me/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'swagger ui', scope: 'movies:read', expires_in_days: 1 }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const { token: pat } = (await created.json()) as { token: string };
    assert.match(pat, /^myapi_pat_/);

    // Another person's browser: not logged in with the password flow.
    assert.ok(browser !== undefined);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const other = await context.newPage();
    watch(other);
    assert.equal((await other.goto(`${origin}/docs`))?.status(), 200);
    await other.locator('.auth-wrapper .btn.authorize.unlocked').click();
    const dialog = other.locator('.dialog-ux .modal-ux');
    await dialog.waitFor();
    const bearer = schemeIn(dialog, 'HTTPBearer');
    assert.match(await bearer.locator('h4').innerText(), /HTTPBearer\s+\(http, Bearer\)/);
    assert.match(await bearer.innerText(), /personal access token/);
    await bearer.locator('input#auth-bearer-value').fill(pat);
    await bearer.locator('.auth-btn-wrapper button.authorize', { hasText: 'Authorize' }).click();
    await bearer.locator('.auth-btn-wrapper button', { hasText: 'Logout' }).waitFor();
    assert.equal((await bearer.locator('h6').innerText()).trim(), 'Authorized');
    // The password flow stays logged out: the pasted token alone authorizes.
    const oauth = schemeIn(dialog, 'OAuth2PasswordBearer');
    assert.equal(await oauth.locator('h6').count(), 0);
    await bearer.locator('.auth-btn-wrapper .btn-done').click();
    await dialog.waitFor({ state: 'detached' });
    await other.locator('.auth-wrapper .btn.authorize.locked').waitFor();

    // A protected route, tried from the page: its security accepts the bearer scheme instead.
    const operation = other.locator('.opblock.opblock-get').filter({
      has: other.locator('.opblock-summary-path[data-path="/users/me"]'),
    });
    await operation.locator('.opblock-summary-control').click();
    await operation.locator('.try-out__btn').click();
    const meResponse = other.waitForResponse(
      (response) =>
        response.request().method() === 'GET' && new URL(response.url()).pathname === '/users/me',
    );
    await operation.locator('.execute').click();
    const me = await meResponse;
    assert.equal(me.status(), 200, await me.text());
    assert.equal((await me.request().allHeaders()).authorization, `Bearer ${pat}`);

    const shown = operation.locator('.live-responses-table tbody .response').first();
    await shown.waitFor();
    assert.equal((await shown.locator('.response-col_status').innerText()).trim(), '200');
    const text = await shown.locator('.response-col_description .microlight').first().innerText();
    const account = JSON.parse(text) as { email: string; name: string };
    assert.equal(account.email, USER.email);
    assert.equal(account.name, USER.name);
    assert.equal(responseTo('GET', '/users/me').status(), 200);
    await context.close();
  });

  it('made every request to this server only, without page errors', () => {
    assert.ok(requests.length > 0, 'the page made no requests');
    const elsewhere = requests.filter((request) => {
      const url = new URL(request.url);
      return !(['http:', 'https:'].includes(url.protocol) && LOCAL_HOSTS.has(url.hostname));
    });
    assert.deepEqual(elsewhere, [], 'Swagger UI must work offline');
    assert.deepEqual(pageErrors, []);
  });
});
