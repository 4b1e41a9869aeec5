// The input-error class lives in the spec (one copy): packages below core (weights) throw it too.
export { HeadbenchInputError } from '@headbench/spec';
