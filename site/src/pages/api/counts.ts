// Same-origin pool counts for the live availability badges (the browser never talks to the API directly).
import type { APIRoute } from 'astro';
import { ApiError, getCounts } from '../../lib/api';
import { jsonError } from '../../lib/body';

export const GET: APIRoute = async () => {
  try {
    const counts = await getCounts();
    return new Response(JSON.stringify(counts), {
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    });
  } catch (err) {
    const e = err instanceof ApiError ? err : new ApiError(502, 'API_ERROR', 'Pool counts are unavailable.');
    return jsonError(502, e.code, 'Pool counts are unavailable right now.');
  }
};
