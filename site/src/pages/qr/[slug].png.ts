// QR code linking to a template page, for sharing from one screen to a phone.
import type { APIRoute } from 'astro';
import { getTemplate } from '../../lib/api';
import { publicOrigin } from '../../lib/config';
import { qrPng } from '../../lib/qr';
import { isTemplateSlug } from '../../lib/validate';

export const GET: APIRoute = async ({ params, url }) => {
  const slug = params.slug ?? '';
  if (!isTemplateSlug(slug)) return new Response('Not found', { status: 404 });
  const t = await getTemplate(slug).catch(() => undefined);
  if (t === undefined)
    return new Response('Catalog unavailable', { status: 503, headers: { 'retry-after': '30' } });
  if (t === null) return new Response('Not found', { status: 404 });
  const png = await qrPng(`${publicOrigin(url)}/a/${t.slug}`);
  return new Response(new Uint8Array(png), {
    headers: { 'content-type': 'image/png', 'cache-control': 'public, max-age=3600' },
  });
};
