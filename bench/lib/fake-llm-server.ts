// The fake OpenAI-compatible provider (test/support/fake-llm-provider.ts) as its own process,
// so a bench can give it a core of its own. Prints `READY <url>` (the base URL, ending in /v1)
// on stdout once it listens; SIGTERM / SIGINT close it.
//
//   node dist/bench/lib/fake-llm-server.js [--port=0] [--host=127.0.0.1] [--models=fake-model,other]
//        [--behavior='{"dripMs":5,"chunks":20}'] [--max-recorded=1000] [--api-key=KEY]
//
// Another process steers it over HTTP (JSON): POST /__fake/behavior {behavior, model?},
// POST /__fake/reset, POST /__fake/models {models}, GET /__fake/stats.
import { type FakeBehavior, startFakeProvider } from '../../test/support/fake-llm-provider.js';

function arg(name: string): string | undefined {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

async function main(): Promise<void> {
  const models = arg('models')?.split(',').filter(Boolean);
  const provider = await startFakeProvider({
    port: Number(arg('port') ?? 0),
    host: arg('host') ?? '127.0.0.1',
    models: models?.length ? models : undefined,
    apiKey: arg('api-key'),
    // A bench sends tens of thousands of requests: keep the recent ones only.
    maxRecorded: Number(arg('max-recorded') ?? 1000),
    control: true,
  });
  const behavior = arg('behavior');
  if (behavior) provider.setBehavior(JSON.parse(behavior) as FakeBehavior);
  const stop = (): void => {
    void provider.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  console.log(`READY ${provider.url}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
