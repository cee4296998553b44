// @ts-check
import node from '@astrojs/node';
import { defineConfig } from 'astro/config';

// Every page is rendered on demand: the catalog and pool counts come from the live API,
// and the claim proxy / admin console need the server (the API key never leaves it).
export default defineConfig({
  output: 'server',
  // Nothing the site accepts is bigger than 64 KiB, and every endpoint reads its body with its own, smaller cap
  // (src/lib/body.ts). This is the backstop for anything else that reads a body: the adapter's default is 1 GiB.
  adapter: node({ mode: 'standalone', bodySizeLimit: 1024 * 1024 }),
  server: { host: '127.0.0.1', port: 4321 },
  // The shared claim contract lives outside the site (../contracts); the dev server may serve it to the browser.
  vite: { server: { fs: { allow: ['.', '../contracts'] } } },
  // Do not set security.allowedDomains: with it, Astro's clientAddress becomes the client-controlled left end
  // of X-Forwarded-For. The site finds the client address itself (src/lib/client.ts, SITE_TRUSTED_PROXY_HOPS).
  // No third-party hosts: scripts/styles are hashed into a CSP meta tag by Astro,
  // images (QR/OG) are ours or data: URLs, fetches only go to our own origin.
  security: {
    // Astro's cross-site form check runs before the site's middleware, which then could not drop the body of a
    // request it refused: src/middleware.ts makes the same check itself (src/lib/origin.ts).
    checkOrigin: false,
    csp: {
      directives: [
        "default-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "base-uri 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
      ],
    },
  },
  build: { inlineStylesheets: 'always' },
  devToolbar: { enabled: false },
});
