// Entry point `koala-tracker/collector`: a Koala-compatible ingestion server for development and tests.
export * from './collector'
