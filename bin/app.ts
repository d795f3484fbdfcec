import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { resolve } from 'node:path';
import { loadConfig } from '../lib/config';
import { FileProblemsError } from '../functions/core/file-problems';
import { UnreadableFileError } from '../functions/local/readable-file';
import { PqlRadarStack } from '../lib/pql-radar-stack';

const app = new App();

// The deployment config: `pql-radar.config.yaml` in the working directory, or another with `-c config=path`.
const configPath = resolve(String(app.node.tryGetContext('config') ?? 'pql-radar.config.yaml'));
// A wrong config or rules file stops the synth here, with every problem, its path and line: those alone, since a
// stack trace and the problems' objects would say each again.
const { config, rulesFile } = (() => {
  try {
    return loadConfig(configPath);
  } catch (error) {
    if (!(error instanceof FileProblemsError) && !(error instanceof UnreadableFileError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
})();

new PqlRadarStack(app, String(app.node.tryGetContext('stackName') ?? 'PqlRadar'), {
  description: 'pql-radar: product-qualified leads from Segment-compatible usage events',
  config,
  rulesFile,
});

// cdk-nag 3 runs as a policy validation plugin (no longer an Aspect); findings fail the synth.
// Acknowledgements sit next to the resources they concern, in lib/.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
