// server.mjs — the benchmark's peer: the add tool on the official
// TypeScript MCP SDK (@modelcontextprotocol/sdk), the stack the original
// TypeScript project runs on. Run by the Go harness in bench/:
//
//	PEER_TOKEN=<token> node server.mjs
//
// It follows the SDK's documented stateless pattern (a new McpServer and
// StreamableHTTPServerTransport per request, sessionIdGenerator undefined,
// JSON responses) on the SDK's Express app, with the SDK's
// requireBearerAuth middleware in front of /mcp. The verifier accepts
// exactly PEER_TOKEN: a static token check, the cheapest verifier there is,
// so the peer's numbers are an upper bound for the stack.
//
// It listens on a free loopback port and prints "listening <port>" on
// stdout once it accepts connections; SIGINT or SIGTERM stop it.

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import * as z from 'zod/v4';

const token = process.env.PEER_TOKEN;
if (!token) {
  console.error('peer: PEER_TOKEN is not set');
  process.exit(2);
}

const verifier = {
  async verifyAccessToken(t) {
    if (t !== token) {
      throw new InvalidTokenError('unknown token');
    }
    return { token: t, clientId: 'bench', scopes: [], expiresAt: Math.floor(Date.now() / 1000) + 3600 };
  },
};

function newServer() {
  const server = new McpServer({ name: 'bench-peer', version: '1.0.0' });
  server.registerTool('add', {
    description: 'Adds two numbers.',
    inputSchema: { a: z.number(), b: z.number() },
  }, async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }));
  return server;
}

const app = createMcpExpressApp({ host: '127.0.0.1' });
app.post('/mcp', requireBearerAuth({ verifier }), async (req, res) => {
  const server = newServer();
  try {
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      transport.close();
      server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  } catch (err) {
    console.error('peer: handling a request:', err);
    if (!res.headersSent) {
      res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'internal server error' }, id: null });
    }
  }
});

const listener = app.listen(0, '127.0.0.1', () => {
  console.log(`listening ${listener.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => listener.close(() => process.exit(0)));
}
