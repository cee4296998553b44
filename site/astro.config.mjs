// @ts-check
import node from '@astrojs/node';
import { defineConfig } from 'astro/config';

// Every page is rendered on demand: the catalog and pool counts come from the live API,
// and the claim proxy / admin console need the server (the API key never leaves it).
export default defineConfig({
  output: 'server',
  adapter: node({ mode: 'standalone' }),
  server: { host: '127.0.0.1', port: 4321 },
  // No third-party hosts: scripts/styles are hashed into a CSP meta tag by Astro,
  // images (QR/OG) are ours or data: URLs, fetches only go to our own origin.
  security: {
    checkOrigin: true,
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
