mod cli;
mod e2e;
mod faults;
mod harness;
mod loader;
mod parity;
mod secrets_in_errors;
mod stacks;
