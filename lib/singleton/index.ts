// Entry point `koala-tracker/singleton`: one tracker per process, configured from the environment.
export * from './singleton'
