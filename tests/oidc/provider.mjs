// A real OpenID Connect provider (the `oidc-provider` package) on 127.0.0.1, for the sign-in
// browser test only (tests/test_auth_browser.py). Two users, a plain login form with a password
// check, no consent page (the one test client is trusted), and local pages only: nothing here
// loads anything from the internet.
//
//   node tests/oidc/provider.mjs PORT CLIENT_ID CLIENT_SECRET APP_ORIGIN
//
// Prints one line "ready ISSUER" once it listens. Never use it for anything but tests: the keys
// are generated at start and the accounts are fixed.
import http from 'node:http';
import { URLSearchParams } from 'node:url';

import Provider from 'oidc-provider';

const [port, clientId, clientSecret, appOrigin] = process.argv.slice(2);
if (!port || !clientId || !clientSecret || !appOrigin) {
  console.error('usage: node provider.mjs PORT CLIENT_ID CLIENT_SECRET APP_ORIGIN');
  process.exit(2);
}

const USERS = {
  'user-a': { password: 'password-a', name: 'Alice Able', email: 'user-a@example.test' },
  'user-b': { password: 'password-b', name: 'Bob Baker', email: 'user-b@example.test' },
};

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8">
<title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`;

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [`${appOrigin}/oauth2callback`],
    post_logout_redirect_uris: [`${appOrigin}/oauth2callback`],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  async findAccount(ctx, id) {
    const user = USERS[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: user.name, email: user.email, email_verified: true };
      },
    };
  },
  claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
  // name and email in the ID token itself: Streamlit's st.user reads the ID token's claims.
  conformIdTokenClaims: false,
  cookies: { keys: ['test-only-cookie-key'] },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page('Sign out of the test provider?', `${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<p>You are signed out.</p>');
      },
    },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Provider error', `<pre>${esc(JSON.stringify(out))}</pre>`);
  },
});

function loginForm(uid, message = '') {
  return page('Test provider: sign in', `${message ? `<p role="alert">${esc(message)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <label>User name <input name="login" required></label>
  <label>Password <input name="password" type="password" required></label>
  <button type="submit">Sign in</button>
</form>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10000) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

// The login form: the provider's own routes handle everything else.
async function interaction(req, res) {
  const match = /^\/interaction\/([^/]+)(\/login)?$/.exec(new URL(req.url, issuer).pathname);
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== match[1]) return send(res, 400, page('Error', '<p>Stale sign-in.</p>'));
  if (req.method === 'GET') return send(res, 200, loginForm(details.uid));
  const form = await readForm(req);
  const user = USERS[form.get('login')];
  if (!user || user.password !== form.get('password')) {
    return send(res, 401, loginForm(details.uid, 'Wrong user name or password.'));
  }
  const accountId = form.get('login');
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope || 'openid'));
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } },
    { mergeWithLastSubmission: false });
}

const handle = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => send(res, 500, page('Error', `<pre>${esc(err)}</pre>`)));
  } else {
    handle(req, res);
  }
});
server.listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
