/**
 * Loads the versioned catalog file (catalog/templates.json), validates it, and upserts it into the
 * `templates` table. Idempotent: every start runs it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { sql } from 'drizzle-orm';
import { isTemplateSkill } from '../contracts/template-skills';
import type { Db } from '../drizzle/client';
import { templates } from '../drizzle/schema';

export const TemplateSchema = Type.Object({
  slug: Type.String({ pattern: '^[a-z0-9]+(-[a-z0-9]+)*$', maxLength: 64 }),
  name: Type.String({ minLength: 1, maxLength: 64 }),
  emoji: Type.String({ minLength: 1, maxLength: 16 }),
  category: Type.String({ minLength: 1, maxLength: 64 }),
  description: Type.String({ minLength: 1, maxLength: 500 }),
  skills: Type.Array(Type.String({ minLength: 1, maxLength: 32 })),
  instructions: Type.String({ minLength: 1, maxLength: 32 * 1024 }),
});

const CatalogSchema = Type.Object({
  version: Type.Integer({ minimum: 1 }),
  templates: Type.Array(TemplateSchema),
});
export type Catalog = Static<typeof CatalogSchema>;

export const catalogPath = path.join(path.dirname(fileURLToPath(import.meta.url)), 'templates.json');

export function loadCatalog(file = catalogPath): Catalog {
  const data: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Value.Check(CatalogSchema, data)) {
    const first = Value.Errors(CatalogSchema, data).First();
    throw new Error(`catalog ${file} is invalid at ${first?.path}: ${first?.message}`);
  }
  const slugs = new Set<string>();
  for (const t of data.templates) {
    if (slugs.has(t.slug)) throw new Error(`catalog ${file}: duplicate slug ${t.slug}`);
    slugs.add(t.slug);
    // A skill is a promise: only those the skill contract defines (and the runtime's test checks) are listed.
    const unknown = t.skills.filter((s) => !isTemplateSkill(s));
    if (unknown.length > 0)
      throw new Error(
        `catalog ${file}: template ${t.slug} lists unknown skills ${unknown.join(', ')} (contracts/template-skills.ts)`,
      );
  }
  return data;
}

export async function seedCatalog(db: Db, catalog = loadCatalog()): Promise<number> {
  if (catalog.templates.length === 0) return 0;
  await db
    .insert(templates)
    .values(catalog.templates.map((t) => ({ ...t, catalogVersion: catalog.version, updatedAt: new Date() })))
    .onConflictDoUpdate({
      target: templates.slug,
      set: {
        name: sql`excluded.name`,
        emoji: sql`excluded.emoji`,
        category: sql`excluded.category`,
        description: sql`excluded.description`,
        skills: sql`excluded.skills`,
        instructions: sql`excluded.instructions`,
        catalogVersion: sql`excluded.catalog_version`,
        updatedAt: sql`excluded.updated_at`,
      },
    });
  return catalog.templates.length;
}
