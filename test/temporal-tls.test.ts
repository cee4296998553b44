/**
 * mTLS configured by the environment actually connects: a TLS-terminating proxy (node:tls, a CA made by
 * `openssl` for this run, a server certificate for `temporal.test` only, client certificates required) in
 * front of the run's dev server. The client's `Connection` and the worker's `NativeConnection` reach the
 * server through it with TEMPORAL_TLS_* alone, and not without the client certificate.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { connectTemporal, resolveTemporalConnection } from '../config/temporal';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temporal-tls-'));
const file = (name: string) => path.join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
let proxy: tls.Server;
let proxyAddress = '';

/** A key and a certificate for `cn`, signed by the run's CA. */
function issue(name: string, cn: string, extensions: string) {
  openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  );
  fs.writeFileSync(file(`${name}.ext`), extensions);
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '1',
    '-out',
    `${name}.crt`,
    '-extfile',
    `${name}.ext`,
  );
}

beforeAll(async () => {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '1',
    '-subj',
    '/CN=convos-agents test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  issue(
    'server',
    'temporal.test',
    'subjectAltName=DNS:temporal.test\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  issue(
    'client',
    'convos-agents worker',
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n',
  );

  const [host, port] = inject('temporalAddress').split(':');
  proxy = tls.createServer(
    {
      key: fs.readFileSync(file('server.key')),
      cert: fs.readFileSync(file('server.crt')),
      ca: fs.readFileSync(file('ca.crt')),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      const upstream = net.connect(Number(port), host);
      socket.pipe(upstream).pipe(socket);
      const close = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('error', close);
      upstream.on('error', close);
      socket.on('close', close);
      upstream.on('close', close);
    },
  );
  proxy.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyAddress = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => proxy?.close(resolve));
  fs.rmSync(dir, { recursive: true, force: true });
});

const mtlsEnv = () => ({
  TEMPORAL_ADDRESS: proxyAddress,
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: file('ca.crt'),
  TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
  TEMPORAL_TLS_CLIENT_CERT_PATH: file('client.crt'),
  TEMPORAL_TLS_CLIENT_KEY_PATH: file('client.key'),
});
const defaults = { address: '127.0.0.1:7233', namespace: 'default' };

it('the client and the worker connect through mTLS configured by TEMPORAL_TLS_*', async () => {
  const c = resolveTemporalConnection(mtlsEnv(), defaults);
  expect(c).toMatchObject({ tls: true, auth: 'mtls' });

  const client = await connectTemporal(c, { connectTimeout: 5000 });
  try {
    const info = await client.workflowService.getSystemInfo({});
    expect(info.serverVersion).toBeTruthy();
  } finally {
    await client.close();
  }

  const native = await NativeConnection.connect(c.options());
  try {
    const ns = await native.workflowService.describeNamespace({ namespace: 'default' });
    expect(ns.namespaceInfo?.name).toBe('default');
  } finally {
    await native.close();
  }
});

/** Connects (and so asks the server for its system info) through `env`'s connection: it must fail. */
const refused = (env: Record<string, string>) =>
  connectTemporal(resolveTemporalConnection(env, defaults), { connectTimeout: 1000 }).then((conn) =>
    conn.close(),
  );

it('does not connect without the client certificate, nor without the server name', async () => {
  const { TEMPORAL_TLS_CLIENT_CERT_PATH: _c, TEMPORAL_TLS_CLIENT_KEY_PATH: _k, ...withoutCert } = mtlsEnv();
  const { TEMPORAL_TLS_SERVER_NAME: _n, ...withoutName } = mtlsEnv();
  const [noCert, noName] = await Promise.allSettled([refused(withoutCert), refused(withoutName)]);
  expect(noCert.status, 'without the client certificate').toBe('rejected');
  // 127.0.0.1 is not in the server's certificate: TEMPORAL_TLS_SERVER_NAME is what made it verify.
  expect(noName.status, 'without the server name').toBe('rejected');
});
