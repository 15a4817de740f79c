//! The output formats a command can print in, chosen with `--output`.

/// Output format of plan and deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    Text,
    /// JSON following schema/plan.schema.json.
    Json,
}

/// Output format of `stackroll plan`: the report formats and Markdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// Human-readable text.
    Text,
    /// JSON following schema/plan.schema.json.
    Json,
    /// GitHub-flavoured Markdown, for a pull-request comment.
    Markdown,
}
