/**
 * Migrates one template database on the server named by DATABASE_URL; each
 * test file gets `CREATE DATABASE … TEMPLATE` of it, and everything is dropped
 * at the end.
 */
import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { connectPostgres } from '../../src/db/client.js';
import { migrateUp } from '../../src/db/migrate.js';
import { databaseUrl, onServer } from '../helpers/postgres-admin.js';

export default async function setup(project: TestProject) {
  const serverUrl = process.env.DATABASE_URL!;
  const templateName = `tracker_template_${randomBytes(4).toString('hex')}`;
  await onServer(serverUrl, `create database ${templateName}`);
  const template = connectPostgres({ url: databaseUrl(serverUrl, templateName), poolSize: 1 });
  try {
    await migrateUp(template);
  } finally {
    await template.close();
  }
  project.provide('testDatabase', { kind: 'postgres', serverUrl, templateName });
  return () => onServer(serverUrl, `drop database if exists ${templateName} with (force)`);
}
