import { fromEnv } from '@aws-sdk/credential-provider-env';

/**
 * What `@aws-sdk/credential-provider-node` means inside a Lambda bundle (lib/lambda-bundling.ts aliases the package
 * to this module; the CLI and the local runtime keep the SDK's full chain). Why: every SDK client's default
 * credentials come from that package's chain (environment, SSO, ini files, credential_process, web identity,
 * container and instance metadata), which brings the SSO, STS and sign-in clients along: about 130 KB of the bundle.
 * Lambda hands a function its role's credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN,
 * the chain's first link, where it stops in Lambda; the other links never get a turn there.
 */
export const defaultProvider = (init?: Parameters<typeof fromEnv>[0]) => fromEnv(init);
