// client.mjs — interoperability check: the official TypeScript MCP client
// (@modelcontextprotocol/sdk) signs in to a toolgate server through its
// OAuth flow and calls tools. Run by cmd/toolgate/tsclient_test.go against
// a development-mode server:
//
//	node client.mjs http://127.0.0.1:PORT alice@example.com
//
// The sign-in is the SDK's own: the first connect meets the 401 of /mcp,
// discovers the authorization server, registers a public client and calls
// redirectToAuthorization. There this script plays the browser: it follows
// the redirects, approves toolgate's consent page and submits the
// development AuthKit's login page with the user's email, the same way as
// the Go test's browser (auth_e2e_test.go), and captures the code from the
// redirect to the loopback redirect URI. finishAuth redeems it and a second
// connect goes through. After the first tool call the tokens are refreshed
// with the SDK's auth() and the next call uses the new access token.
//
// On success it prints one JSON object on stdout:
//
//	{"protocolVersion": "...", "tools": ["add", ...], "add": "5",
//	 "generateImage": {"isError": false, "text": "...", "mimeType": "image/png", "bytes": 1234},
//	 "refreshed": true, "addAfterRefresh": "5"}
//
// On any failure it prints "tsclient: <reason>" on stderr and exits 1.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { randomBytes } from 'node:crypto';

// The loopback redirect URI registered for this client. Nothing listens
// there: the browser below stops at the redirect and reads the code.
const REDIRECT_URI = 'http://127.0.0.1:5556/callback';

// The most redirects and form submissions one sign-in may take.
const MAX_STEPS = 20;

const HIDDEN_INPUT = /<input type="hidden" name="([a-z_]+)" value="([^"]*)">/g;

// unescapeHTML decodes the entities html/template writes in attribute
// values.
function unescapeHTML(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_, e) => {
    switch (e) {
      case 'amp': return '&';
      case 'lt': return '<';
      case 'gt': return '>';
      case 'quot': return '"';
      case 'apos': return "'";
    }
    const code = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return String.fromCodePoint(code);
  });
}

// CookieJar keeps the cookies of one sign-in, by host and name. Attributes
// other than an expiry in the past are ignored: every request of the flow
// goes to the same loopback server.
class CookieJar {
  #cookies = new Map(); // host -> Map(name -> value)

  store(url, response) {
    const host = new URL(url).host;
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const jar = this.#cookies.get(host) ?? new Map();
      this.#cookies.set(host, jar);
      const expired = attrs.some((a) => {
        const [k, v = ''] = a.split('=');
        const key = k.trim().toLowerCase();
        return (key === 'max-age' && Number(v) <= 0) || (key === 'expires' && Date.parse(v) <= Date.now());
      });
      if (expired) jar.delete(name);
      else jar.set(name, value);
    }
  }

  header(url) {
    const jar = this.#cookies.get(new URL(url).host);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

// signInAsBrowser walks the authorization URL to the redirect URI: it
// follows redirects, approves the consent page and logs in as user on the
// development AuthKit's page. It returns the redirect's query parameters.
async function signInAsBrowser(authorizationUrl, user) {
  const jar = new CookieJar();
  let url = authorizationUrl.toString();
  let init = { method: 'GET' };
  for (let step = 0; step < MAX_STEPS; step++) {
    const headers = new Headers(init.headers);
    const cookie = jar.header(url);
    if (cookie) headers.set('Cookie', cookie);
    let response;
    try {
      response = await fetch(url, { ...init, headers, redirect: 'manual' });
    } catch (err) {
      throw new Error(`browser: ${init.method} ${url}: ${err.message}`, { cause: err });
    }
    jar.store(url, response);
    const body = await response.text();
    if (response.status >= 300 && response.status < 400) {
      const location = response.headers.get('Location');
      if (!location) throw new Error(`browser: ${url} answered ${response.status} without a Location`);
      const next = new URL(location, url);
      if (next.href.startsWith(REDIRECT_URI)) return next.searchParams;
      url = next.href;
      init = { method: 'GET' };
      continue;
    }
    if (response.status === 200 && (response.headers.get('Content-Type') ?? '').includes('text/html')) {
      const form = new URLSearchParams();
      for (const [, name, value] of body.matchAll(HIDDEN_INPUT)) form.set(name, unescapeHTML(value));
      if (form.has('login_id')) {
        form.set('email', user); // the development AuthKit's login page
      } else if (form.has('request')) {
        form.set('action', 'approve'); // toolgate's consent page
      } else {
        throw new Error(`browser: unexpected page at ${url}: ${body.slice(0, 500)}`);
      }
      url = new URL('authorize', url).href;
      init = { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form.toString() };
      continue;
    }
    throw new Error(`browser: ${init.method} ${url} answered ${response.status}: ${body.slice(0, 500)}`);
  }
  throw new Error(`browser: no redirect to ${REDIRECT_URI} after ${MAX_STEPS} steps`);
}

// MemoryOAuthProvider is an OAuthClientProvider that keeps everything in
// memory and signs in by playing the browser for user.
class MemoryOAuthProvider {
  #user;
  #clientInformation;
  #tokens;
  #codeVerifier;
  #discoveryState;
  #state;
  // The authorization code of the last sign-in, for finishAuth.
  authorizationCode;

  constructor(user) {
    this.#user = user;
  }

  get redirectUrl() {
    return REDIRECT_URI;
  }

  get clientMetadata() {
    return {
      client_name: 'toolgate TypeScript interop client',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this.#state = randomBytes(16).toString('hex');
    return this.#state;
  }

  clientInformation() {
    return this.#clientInformation;
  }

  saveClientInformation(info) {
    this.#clientInformation = info;
  }

  tokens() {
    return this.#tokens;
  }

  saveTokens(tokens) {
    this.#tokens = tokens;
  }

  saveCodeVerifier(verifier) {
    this.#codeVerifier = verifier;
  }

  codeVerifier() {
    if (!this.#codeVerifier) throw new Error('no code verifier saved');
    return this.#codeVerifier;
  }

  saveDiscoveryState(state) {
    this.#discoveryState = state;
  }

  discoveryState() {
    return this.#discoveryState;
  }

  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this.#clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this.#tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this.#codeVerifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.#discoveryState = undefined;
  }

  async redirectToAuthorization(authorizationUrl) {
    const params = await signInAsBrowser(authorizationUrl, this.#user);
    if (params.has('error')) {
      throw new Error(`authorization failed: ${params.get('error')}: ${params.get('error_description') ?? ''}`);
    }
    if (params.get('state') !== this.#state) {
      throw new Error(`authorization redirect carries state ${JSON.stringify(params.get('state'))}, want ${JSON.stringify(this.#state)}`);
    }
    const code = params.get('code');
    if (!code) throw new Error('authorization redirect carries no code');
    this.authorizationCode = code;
  }
}

function textOf(result) {
  return result.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

async function callTool(client, name, args) {
  try {
    return await client.callTool({ name, arguments: args });
  } catch (err) {
    throw new Error(`tools/call ${name}: ${err.message}`, { cause: err });
  }
}

async function main(argv) {
  if (argv.length !== 2) {
    throw new Error('usage: node client.mjs SERVER_URL USER_EMAIL');
  }
  const [base, user] = argv;
  const endpoint = new URL(base.replace(/\/+$/, '') + '/mcp');
  const provider = new MemoryOAuthProvider(user);
  const info = { name: 'toolgate-tsclient', version: '1.0.0' };

  // First connect: 401, discovery, registration, sign-in, then the SDK
  // throws UnauthorizedError and waits for finishAuth.
  let transport = new StreamableHTTPClientTransport(endpoint, { authProvider: provider });
  try {
    await new Client(info).connect(transport);
    throw new Error('the first connect succeeded without signing in; want 401 from /mcp');
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw new Error(`first connect: ${err.message}`, { cause: err });
  }
  if (!provider.authorizationCode) throw new Error('the SDK did not ask to sign in');
  await transport.finishAuth(provider.authorizationCode);
  const firstAccessToken = provider.tokens()?.access_token;
  if (!firstAccessToken) throw new Error('finishAuth saved no access token');

  transport = new StreamableHTTPClientTransport(endpoint, { authProvider: provider });
  const client = new Client(info);
  try {
    await client.connect(transport);
  } catch (err) {
    throw new Error(`connect after sign-in: ${err.message}`, { cause: err });
  }
  try {
    let listed;
    try {
      listed = await client.listTools();
    } catch (err) {
      throw new Error(`tools/list: ${err.message}`, { cause: err });
    }
    const tools = listed.tools.map((t) => t.name).sort();

    const add = await callTool(client, 'add', { a: 2, b: 3 });
    if (add.isError) throw new Error(`add(2, 3) is a tool error: ${textOf(add)}`);

    // Refresh: with a refresh token stored, auth() redeems it at the token
    // endpoint; the transport reads the new access token from the provider
    // on its next request.
    if (!provider.tokens()?.refresh_token) throw new Error('no refresh token was issued');
    const refreshResult = await auth(provider, { serverUrl: endpoint });
    const refreshedAccessToken = provider.tokens()?.access_token;
    const refreshed = refreshResult === 'AUTHORIZED' && !!refreshedAccessToken && refreshedAccessToken !== firstAccessToken;
    const addAfterRefresh = await callTool(client, 'add', { a: 2, b: 3 });

    const image = await callTool(client, 'generateImage', { prompt: 'a lighthouse at dusk', steps: 4 });
    const picture = image.content.find((c) => c.type === 'image');

    return {
      protocolVersion: transport.protocolVersion ?? null,
      tools,
      add: textOf(add),
      refreshed,
      addAfterRefresh: addAfterRefresh.isError ? null : textOf(addAfterRefresh),
      generateImage: {
        isError: image.isError === true,
        text: textOf(image),
        mimeType: picture?.mimeType ?? null,
        bytes: picture ? Buffer.from(picture.data, 'base64').length : 0,
      },
    };
  } finally {
    await client.close();
  }
}

// describe is err's message followed by those of its causes that it does
// not already include (fetch's "fetch failed" hides the reason in cause).
function describe(err) {
  let text = String(err?.message ?? err);
  for (let c = err?.cause; c; c = c.cause) {
    const m = String(c.message ?? c);
    if (!text.includes(m)) text += `: ${m}`;
  }
  return text;
}

try {
  const summary = await main(process.argv.slice(2));
  process.stdout.write(JSON.stringify(summary) + '\n');
} catch (err) {
  process.stderr.write(`tsclient: ${describe(err)}\n`);
  process.exit(1);
}
