// Open Graph image for a template page (1200×630 PNG), rendered on our server.
import type { APIRoute } from 'astro';
import { getTemplate } from '../../lib/api';
import { renderOgPng } from '../../lib/og';
import { isTemplateSlug } from '../../lib/validate';

export const GET: APIRoute = async ({ params }) => {
  const slug = params.slug ?? '';
  if (!isTemplateSlug(slug)) return new Response('Not found', { status: 404 });
  const t = await getTemplate(slug).catch(() => undefined);
  if (t === undefined)
    return new Response('Catalog unavailable', { status: 503, headers: { 'retry-after': '30' } });
  if (t === null) return new Response('Not found', { status: 404 });
  const png = await renderOgPng(t);
  return new Response(new Uint8Array(png), {
    headers: { 'content-type': 'image/png', 'cache-control': 'public, max-age=3600' },
  });
};
