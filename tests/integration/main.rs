mod cli;
mod e2e;
mod loader;
mod parity;
