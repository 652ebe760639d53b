// An app served on a real socket (127.0.0.1, a free port), and the token-endpoint calls over it.
import type { AddressInfo } from 'node:net';
import type { App } from '../../src/app.js';

export interface Answer<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON (undefined when it is empty). */
  body: T;
}

/** A client of an app listening on a socket of its own. */
export class Client {
  constructor(readonly url: string) {}

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options: { authorization?: string; form?: Record<string, string>; json?: unknown } = {},
  ): Promise<Answer<T>> {
    const headers: Record<string, string> = {};
    if (options.authorization !== undefined) headers.authorization = options.authorization;
    let body: string | undefined;
    if (options.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(options.form).toString();
    } else if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    const response = await fetch(`${this.url}${path}`, { method, headers, body });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      text,
      body: (text === '' ? undefined : JSON.parse(text)) as T,
    };
  }

  /** POST /token with a form. */
  token(form: Record<string, string>): Promise<Answer> {
    return this.request('POST', '/token', { form });
  }

  /** The password grant's answer; fails unless 200. */
  async login(username: string, password: string, scope?: string): Promise<TokenPair> {
    const answer = await this.token({
      username,
      password,
      ...(scope === undefined ? {} : { scope }),
    });
    if (answer.status !== 200) throw new Error(`login failed: ${answer.status} ${answer.text}`);
    return answer.body as unknown as TokenPair;
  }

  /** GET /movies/1 with a bearer token: 200 while the token works. */
  async movie(token: string): Promise<Answer> {
    return this.request('GET', '/movies/1', { authorization: `Bearer ${token}` });
  }
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  scope: string;
  token_type: string;
  expires_in: number;
}

/** Starts `app` on a free port of 127.0.0.1; closing the app closes the socket. */
export async function listening(app: App): Promise<Client> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return new Client(`http://127.0.0.1:${port}`);
}
