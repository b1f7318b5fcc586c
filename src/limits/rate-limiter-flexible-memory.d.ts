// The package's index loads every backend it supports (about 3 MB more memory at start, measured in Keyport); these
// two files are all the in-memory limiter needs. Each file sets `module.exports` to its class;
// the types are the package's own.
declare module "rate-limiter-flexible/lib/RateLimiterMemory.js" {
  import { RateLimiterMemory } from "rate-limiter-flexible";
  export = RateLimiterMemory;
}
declare module "rate-limiter-flexible/lib/RateLimiterRes.js" {
  import { RateLimiterRes } from "rate-limiter-flexible";
  export = RateLimiterRes;
}
