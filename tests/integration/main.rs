mod cli;
mod loader;
