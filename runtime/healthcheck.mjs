// The image's HEALTHCHECK (plain Node, no tsx: it runs every 15 s): healthy when the control server says
// `ready` (gateway ready, channel ready or disabled). The token is read from the container's environment,
// so it is neither in the image nor in `docker inspect`'s health log.
const port = process.env.PORT || '8080';
try {
  const res = await fetch(`http://127.0.0.1:${port}/pool/health`, {
    headers: { authorization: `Bearer ${process.env.INSTANCE_TOKEN ?? ''}` },
    signal: AbortSignal.timeout(4000),
  });
  const body = res.ok ? await res.json() : null;
  console.log(
    body ? `ready=${body.ready} gateway=${body.gateway} channel=${body.channel}` : `HTTP ${res.status}`,
  );
  process.exit(body?.ready ? 0 : 1);
} catch (err) {
  console.log(`unreachable: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
}
