import type pg from 'pg';

/** The statements of a PostgreSQL notification channel, for services that own a dedicated connection. */

/** Starts listening on `channel` (an identifier from our own constants, never user input). */
export async function listen(client: pg.Client, channel: string): Promise<void> {
  await client.query(`LISTEN ${channel}`);
}

/** Sends `payload` on `channel`. */
export async function notify(client: pg.Client, channel: string, payload: string): Promise<void> {
  await client.query(`SELECT pg_notify($1, $2)`, [channel, payload]);
}
