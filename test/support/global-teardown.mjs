export default async function globalTeardown() {
  const embedded = globalThis.__TASKHUB_EMBEDDED__;
  if (!embedded) return;
  await embedded.server.stop();
  await embedded.db.close();
}
