/** A database of a test's own on a Postgres server (created next to the server's others, dropped after). */
import { randomUUID } from 'node:crypto';
import pg from 'pg';

export async function createDatabase(
  serverUrl: string,
  prefix: string,
): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: serverUrl.replace(/\/[^/]*$/, `/${name}`),
    drop: async () => {
      const again = new pg.Client({ connectionString: serverUrl });
      await again.connect();
      await again.query(`drop database if exists ${name} with (force)`).catch(() => {});
      await again.end();
    },
  };
}
