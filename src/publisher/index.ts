export { runPublish, publishUsage, type PublishIo, type PublishDeps } from './run-publish';
export { parsePublishArgs, publishArgsSchema, type PublishArgs } from './args';
export { transactionBundle, entryOutcomes } from './bundle';
